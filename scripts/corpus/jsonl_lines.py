"""Writes the lines of the "text" fields of a JSONL corpus, one per line, for SentencePiece tools.

Why: spm_train and spm_encode read one sentence per line, while the corpus stores whole documents. Training
input keeps every non-blank line (indentation included, so whitespace pieces for code can be learned), up to
--max-mb; --sample N instead picks N lines deterministically (by a hash of the line and --seed), at most
--max-chars long, for the tokenizer agreement check on held-out text.

usage: jsonl_lines.py IN.jsonl OUT.txt [--max-mb X] [--sample N] [--seed S] [--max-chars C]
"""

import argparse
import hashlib
import json
import sys


def lines_of(path):
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                text = json.loads(raw)["text"]
            except (ValueError, KeyError, TypeError) as e:
                sys.exit(f"error: {path}:{n}: {e}")
            for line in text.split("\n"):
                if line.strip():
                    yield line.rstrip()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("inp")
    ap.add_argument("out")
    ap.add_argument("--max-mb", type=float, default=0, help="stop after this much text (0: all)")
    ap.add_argument("--sample", type=int, default=0, help="pick this many distinct lines (0: all lines)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-chars", type=int, default=0, help="skip longer lines (0: no limit)")
    a = ap.parse_args(argv)
    n = 0
    with open(a.out, "w", encoding="utf-8") as out:
        if a.sample:
            keyed = {}
            for line in lines_of(a.inp):
                if a.max_chars and len(line) > a.max_chars:
                    continue
                k = hashlib.sha1(f"{a.seed}:{line}".encode("utf-8")).digest()
                keyed[k] = line
            for k in sorted(keyed)[:a.sample]:
                out.write(keyed[k] + "\n")
                n += 1
        else:
            budget, used = int(a.max_mb * 1e6), 0
            for line in lines_of(a.inp):
                if a.max_chars and len(line) > a.max_chars:
                    continue
                out.write(line + "\n")
                n += 1
                used += len(line.encode("utf-8")) + 1
                if budget and used >= budget:
                    break
    print(f"wrote {a.out}: {n} lines", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
