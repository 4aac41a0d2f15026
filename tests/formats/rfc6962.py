#!/usr/bin/env python3
"""The tree functions of vmcheck.py (docs/formats.md §0) with SHA-256 swapped in for BLAKE3,
against the RFC 6962 vectors the node's own tests use (receipts/tests/it/merkle.rs: roots
for sizes 0-8, the published inclusion and consistency proofs). docs/formats.md §2 claims
this; this script recomputes it.

Usage: rfc6962.py path/to/receipts/tests/it/merkle.rs   (vmcheck.py importable)
"""
import hashlib
import re
import sys

import vmcheck


def consts(src, name):
    """The string literals of `const NAME ... = ...;` in order, as written."""
    m = re.search(r"const " + name + r"\b[^=]*=(.*?);\n", src, re.S)
    if not m:
        raise SystemExit(f"merkle.rs: no const {name}")
    return m.group(1)


def strings(text):
    return re.findall(r'"([0-9a-f]*)"', text)


def tuples(text):
    """[(a, b, [hex, ...]), ...] from `(a, b, &[ "..", ... ])` entries."""
    out = []
    for a, b, body in re.findall(r"\(\s*(\d+),\s*(\d+),\s*&\[(.*?)\]\s*,?\s*\)", text, re.S):
        out.append((int(a), int(b), strings(body)))
    return out


def main(path):
    src = open(path, encoding="utf-8").read()
    leaves = [bytes.fromhex(s) for s in strings(consts(src, "LEAF_INPUTS"))]
    roots = [bytes.fromhex(s) for s in strings(consts(src, "ROOTS"))]
    inclusion = tuples(consts(src, "INCLUSION_PROOFS"))
    consistency = tuples(consts(src, "CONSISTENCY_PROOFS"))
    if (len(leaves), len(roots), len(inclusion), len(consistency)) != (8, 9, 5, 5):
        raise SystemExit("merkle.rs: the vectors changed shape; update rfc6962.py "
                         f"({len(leaves)} leaves, {len(roots)} roots, {len(inclusion)} inclusion, "
                         f"{len(consistency)} consistency)")

    # Swap the hash: vmcheck's functions look b3 up at call time.
    vmcheck.b3 = lambda data: hashlib.sha256(data).digest()
    vmcheck.EMPTY_ROOT = hashlib.sha256(b"").digest()
    lh = [vmcheck.leaf_hash(x) for x in leaves]
    for n in range(9):
        assert vmcheck.mth(lh[:n]) == roots[n], f"root of size {n}"
    for i, n, path_hex in inclusion:
        p = [bytes.fromhex(x) for x in path_hex]
        assert vmcheck.verify_inclusion(i, n, p, lh[i], roots[n]), f"inclusion {i} in {n}"
        bad = list(p)
        if bad:
            bad[0] = bytes([bad[0][0] ^ 1]) + bad[0][1:]
            assert not vmcheck.verify_inclusion(i, n, bad, lh[i], roots[n]), "flipped inclusion"
        assert not vmcheck.verify_inclusion(i, n, p, lh[i], roots[n - 1]), "wrong root accepted"
    for m, n, path_hex in consistency:
        p = [bytes.fromhex(x) for x in path_hex]
        assert vmcheck.verify_consistency(m, n, p, roots[m], roots[n]), f"consistency {m}->{n}"
        if p:
            bad = list(p)
            bad[-1] = bytes([bad[-1][0] ^ 1]) + bad[-1][1:]
            assert not vmcheck.verify_consistency(m, n, bad, roots[m], roots[n]), \
                f"flipped consistency {m}->{n}"
    assert not vmcheck.verify_consistency(0, 8, [], roots[0], roots[8]), "old size 0 accepted"
    print(f"RFC 6962 vectors (SHA-256): {len(roots)} roots, {len(inclusion)} inclusion and "
          f"{len(consistency)} consistency proofs reproduced by vmcheck.py; flipped ones refused")


if __name__ == "__main__":
    main(sys.argv[1])
