#!/usr/bin/env python3
"""Extract every ```python block of docs/formats.md into a directory.

Usage: extract.py [--doc docs/formats.md] OUT_DIR

Each block is saved under the file name its first line gives: the first line must be a
comment whose first word is a `*.py` name (`# vmcheck.py: ...`, `# check_scroll.py EVENTS.jsonl
...`). A block without such a name, an unterminated block, or two blocks with the same name
make the extraction fail (exit 1) naming the block's line in the document. Prints one line
per file written.
"""
import os
import re
import sys

NAME = re.compile(r"#\s*([A-Za-z0-9_.-]+\.py)\b")


def blocks(text, doc):
    """(line number of the opening fence, body) of each ```python block."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start = i + 1
            j = start
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            if j == len(lines):
                raise SystemExit(f"{doc}:{i + 1}: ```python block never closed")
            yield i + 1, "\n".join(lines[start:j]) + "\n"
            i = j + 1
        else:
            i += 1


def main(argv):
    doc = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "formats.md")
    args = list(argv)
    if "--doc" in args:
        k = args.index("--doc")
        doc = args[k + 1]
        del args[k:k + 2]
    if len(args) != 1:
        raise SystemExit("usage: extract.py [--doc docs/formats.md] OUT_DIR")
    out = args[0]
    os.makedirs(out, exist_ok=True)
    with open(doc, encoding="utf-8") as f:
        text = f.read()
    seen = {}
    for line_no, body in blocks(text, doc):
        first = body.split("\n", 1)[0]
        m = NAME.match(first)
        if not m:
            raise SystemExit(f"{doc}:{line_no}: python block without a name: its first line "
                             f"must be `# NAME.py ...`, it is {first!r}")
        name = m.group(1)
        if name in seen:
            raise SystemExit(f"{doc}:{line_no}: {name} already defined by the block at line "
                             f"{seen[name]}")
        seen[name] = line_no
        with open(os.path.join(out, name), "w", encoding="utf-8") as f:
            f.write(body)
        print(f"extracted {name} ({os.path.basename(doc)} line {line_no})")
    if not seen:
        raise SystemExit(f"{doc}: no ```python block found")


if __name__ == "__main__":
    main(sys.argv[1:])
