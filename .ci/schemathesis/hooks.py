"""Schemathesis hooks for the federation API: sign every request as a peer mesh would.

Loaded by schemathesis through SCHEMATHESIS_HOOKS (see run.sh). The signing rule is
src/http/signing.rs (DESIGN §8):

    X-Signature = Ed25519(key, "vaultmesh-federation/v1/request\\n" +
                  METHOD|PATH_AND_QUERY|TIMESTAMP|BODY_HASH|ORIGIN|DESTINATION|NONCE)

over the bytes actually sent: the signature is computed in a `requests` auth object, which
sees the prepared request (final method, path with the query string as encoded, body bytes)
just before it goes on the wire. The mTLS client certificate is passed to schemathesis by
run.sh (--request-cert / --request-cert-key).

Also a command-line tool for run.sh: `python hooks.py keygen DIR MESH_ID` writes a fresh
client key (seed), a self-signed Ed25519 certificate for it (PEM) and prints the key in the
project's `ed25519:z…` form (for `vm-federation peers add`).

Environment (set by run.sh): VM_FUZZ_KEY (the 32-byte seed file), VM_FUZZ_ORIGIN (our mesh
id), VM_FUZZ_DESTINATION (the node's mesh id).
"""

from __future__ import annotations

import datetime
import os
import secrets
import sys

import blake3
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
SIGNING_PREFIX = b"vaultmesh-federation/v1/request\n"
ED25519_MULTICODEC = b"\xed\x01"


def b58encode(data: bytes) -> str:
    """Base58 (bitcoin alphabet), leading zero bytes as '1's."""
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(B58_ALPHABET[r])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(out))


def public_key_text(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:z" + b58encode(ED25519_MULTICODEC + raw)


def keygen(directory: str, mesh_id: str) -> None:
    """A fresh key, its self-signed certificate (CN = the mesh id) and key as PEM files."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    seed = secrets.token_bytes(32)
    key = Ed25519PrivateKey.from_private_bytes(seed)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, mesh_id)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, None)  # Ed25519: no separate hash
    )
    with open(os.path.join(directory, "client.seed"), "wb") as f:
        f.write(seed)
    with open(os.path.join(directory, "client.key.pem"), "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    with open(os.path.join(directory, "client.cert.pem"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    print(public_key_text(key))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "keygen":
        keygen(sys.argv[2], sys.argv[3])
        sys.exit(0)
    sys.exit("usage: hooks.py keygen DIR MESH_ID")


# ---- the schemathesis side ---------------------------------------------------------------

import requests.auth  # noqa: E402
import schemathesis  # noqa: E402
try:  # how urllib3 percent-encodes what is left invalid in a request target (run.sh pins it)
    from urllib3.util.url import _encode_target  # noqa: E402
except ImportError:  # pragma: no cover - a wrong guess shows as signed_requests_authenticate

    def _encode_target(target: str) -> str:
        return target

ORIGIN = os.environ.get("VM_FUZZ_ORIGIN", "")
DESTINATION = os.environ.get("VM_FUZZ_DESTINATION", "")
with open(os.environ["VM_FUZZ_KEY"], "rb") as _f:
    KEY = Ed25519PrivateKey.from_private_bytes(_f.read())

# What the auth provider puts in the headers until the request is signed; schemathesis sees
# the four security headers on the case, so its auth checks (ignored_auth) know the request
# is authenticated, and strip them (and this signer) for their unauthenticated probes.
UNSIGNED = "unsigned"


def sign_headers(method: str, target: str, body: bytes) -> dict[str, str]:
    """The four headers for one request, exactly as src/http/signing.rs::sign makes them."""
    timestamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    nonce = b58encode(secrets.token_bytes(16))
    body_hash = "blake3:" + blake3.blake3(body).hexdigest()
    message = "|".join([method, target, timestamp, body_hash, ORIGIN, DESTINATION, nonce])
    signature = "z" + b58encode(KEY.sign(SIGNING_PREFIX + message.encode()))
    return {
        "X-Mesh-ID": ORIGIN,
        "X-Timestamp": timestamp,
        "X-Nonce": nonce,
        "X-Signature": signature,
    }


class Signer(requests.auth.AuthBase):
    """Signs a prepared request whose X-Mesh-ID is ours (one the auth provider marked)."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if r.headers.get("X-Mesh-ID") != ORIGIN or r.headers.get("X-Signature") != UNSIGNED:
            return r
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")  # as urllib3 sends a str body
        # urllib3 percent-encodes what is left invalid in the target; sign what it sends.
        target = _encode_target(r.path_url)
        r.headers.update(sign_headers(r.method or "GET", target, body))
        return r


@schemathesis.auth(refresh_interval=None, retry_on=[])
class FederationAuth:
    """The mesh `schemathesis` (a known peer of the node, without an agreement)."""

    def get(self, case, ctx):
        # Public operations (discovery, this document) declare no security: send them bare.
        if not case.operation.definition.raw.get("security", [{}]):
            return None
        return ORIGIN

    def set(self, case, data, ctx):
        for name in ("X-Mesh-ID", "X-Timestamp", "X-Nonce", "X-Signature"):
            case.headers[name] = UNSIGNED
        case.headers["X-Mesh-ID"] = data
        case._auth = Signer()


@schemathesis.check
def signed_requests_authenticate(ctx, response, case):
    """A request this hook signed must pass the node's authentication: a 401 `unauthorized`
    (the transport's refusal: signature, window, nonce, origin, TLS key) means the signing
    here or the client certificate is wrong, and every other check would only be looking at
    refusals. (401s with other codes are the documents' own: bad_signature, sender_mismatch,
    …; a field holding '|' or a line break is refused by design, and none survives the URL
    encoding anyway.)"""
    request = response.request
    if request.headers.get("X-Mesh-ID") != ORIGIN or request.headers.get("X-Signature") in (None, UNSIGNED):
        return None
    if response.status_code != 401:
        return None
    try:
        body = response.json()
    except Exception:  # noqa: BLE001 - a 401 without the error body is a failure too
        body = {"error": "unauthorized", "message": response.text}
    if body.get("error") == "unauthorized" and "'|'" not in body.get("message", ""):
        raise AssertionError(f"a correctly signed request was refused: {body.get('message')}")
    return None
