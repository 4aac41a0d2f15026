#!/usr/bin/env python3
"""A throwaway RFC 3161 time-stamp authority on loopback, for tests/formats/run.sh.

Usage: tsa.py DIR

Makes in DIR a root CA (ca.pem) and a TSA certificate it signs (extendedKeyUsage critical
timeStamping), EC P-256, with `openssl`; then serves HTTP on 127.0.0.1 (a free port): each
POST body is a time-stamp query, answered by one `openssl ts -reply` run as
application/timestamp-reply. Prints `tsa on http://127.0.0.1:PORT/` once it listens, then
serves until killed. The same set-up as vm_tsa::testing::OpensslTsa, in Python, so the
script needs only `openssl` on PATH.
"""
import http.server
import os
import subprocess
import sys
import threading

CONFIG = """[req]
distinguished_name = req_dn
prompt = no
[req_dn]
CN = unused
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_tsa]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[tsa]
default_tsa = tsa_config
[tsa_config]
serial = {dir}/tsaserial
crypto_device = builtin
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def openssl(d, *args):
    subprocess.run(["openssl", *args], cwd=d, check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   env=dict(os.environ, OPENSSL_CONF=os.path.join(d, "openssl.cnf")))


def make_pki(d):
    with open(os.path.join(d, "openssl.cnf"), "w") as f:
        f.write(CONFIG.format(dir=d))
    with open(os.path.join(d, "tsaserial"), "w") as f:
        f.write("01\n")
    ec = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
    openssl(d, "genpkey", *ec, "-out", "ca.key")
    openssl(d, "req", "-x509", "-new", "-days", "3650", "-extensions", "v3_ca", "-sha256",
            "-subj", "/O=vm-federation formats test/CN=test root", "-key", "ca.key", "-out", "ca.pem")
    openssl(d, "genpkey", *ec, "-out", "tsa.key")
    openssl(d, "req", "-new", "-subj", "/O=vm-federation formats test/CN=test TSA",
            "-key", "tsa.key", "-out", "tsa.csr")
    openssl(d, "x509", "-req", "-set_serial", "2", "-days", "3650", "-extensions", "v3_tsa",
            "-sha256", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-extfile", "openssl.cnf", "-out", "tsa.pem")


def main(d):
    d = os.path.abspath(d)
    os.makedirs(d, exist_ok=True)
    make_pki(d)
    lock = threading.Lock()
    count = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            query = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:                      # `ts -reply` rewrites the serial file
                count[0] += 1
                q, r = (os.path.join(d, f"request-{count[0]}.{x}") for x in ("tsq", "tsr"))
                with open(q, "wb") as f:
                    f.write(query)
                try:
                    openssl(d, "ts", "-reply", "-section", "tsa_config", "-config", "openssl.cnf",
                            "-queryfile", q, "-inkey", "tsa.key", "-signer", "tsa.pem",
                            "-chain", "ca.pem", "-out", r)
                    body, status, kind = open(r, "rb").read(), 200, "application/timestamp-reply"
                except subprocess.SubprocessError as e:
                    body, status, kind = str(e).encode(), 500, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):
            sys.stderr.write("tsa: " + fmt % args + "\n")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"tsa on http://127.0.0.1:{server.server_address[1]}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1])
