#!/usr/bin/env python3
"""Change one character (or one integer) of a JSON artifact, for the negative checks.

Usage: flip.py IN OUT PATH [--line N]

PATH names the value to change: members and list indices joined by dots
(`signed_root.signature.value`, `inclusion.path.0`, `evidence.proof.path.0`, `root`).
A string has one character replaced (the last one, by the next character of its own
alphabet: hex digits stay hex, base58 stays base58, letters stay letters), so the artifact
stays well-formed and only its meaning changes; an integer gets +1. With `--line N` the
file is JSON Lines and only line N (from 0) changes; the others are copied byte for byte.
The changed object is written back in RFC 8785 form (vmcheck.jcs), so a scroll line stays
canonical and what fails is the hash or signature, not the encoding. Prints what it changed.
"""
import sys

from vmcheck import jcs, parse

HEX = "0123456789abcdef"
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def bump(ch):
    for alphabet in (HEX, B58, "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
        if ch in alphabet:
            return alphabet[(alphabet.index(ch) + 1) % len(alphabet)]
    return "x" if ch != "x" else "y"


def change(doc, path):
    keys = path.split(".")
    parent = doc
    for k in keys[:-1]:
        parent = parent[int(k)] if isinstance(parent, list) else parent[k]
    last = int(keys[-1]) if isinstance(parent, list) else keys[-1]
    old = parent[last]
    if isinstance(old, bool) or not isinstance(old, (str, int)):
        raise SystemExit(f"{path}: {old!r} is not a string or an integer")
    new = old + 1 if isinstance(old, int) else old[:-1] + bump(old[-1])
    parent[last] = new
    return old, new


def main(argv):
    args = list(argv)
    line = None
    if "--line" in args:
        i = args.index("--line")
        line = int(args[i + 1])
        del args[i:i + 2]
    src, dst, path = args
    data = open(src, "rb").read()
    if line is None:
        doc = parse(data)
        old, new = change(doc, path)
        out = jcs(doc) + (b"\n" if data.endswith(b"\n") else b"")
    else:
        lines = data.split(b"\n")
        doc = parse(lines[line])
        old, new = change(doc, path)
        lines[line] = jcs(doc)
        out = b"\n".join(lines)
    with open(dst, "wb") as f:
        f.write(out)
    where = f" (line {line})" if line is not None else ""
    print(f"flipped {path}{where}: {str(old)[-12:]!r} -> {str(new)[-12:]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
