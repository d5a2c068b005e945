"""Cuts corpus documents into training chunks that fit the base model's sequence length.

Why: pocketlm's trainer packs whole examples into sequences of --seq-len tokens and truncates an example longer
than that (its tail is never learned), with attention kept inside each example. A documentation page is
thousands of tokens, so the corpus is cut into chunks of at most --max-tokens tokens, at line boundaries
(paragraphs and code lines stay whole where they fit), each chunk a {"text"} line.

Token counts come from `spm_encode` with the tokenizer's .model file when --spm-model is given (one process for
the whole corpus), otherwise from an estimate of --chars-per-token characters per token. The budget keeps a
margin for BOS / EOS and for the difference between per-line and whole-chunk tokenization.

usage: chunk_corpus.py IN.jsonl OUT.jsonl --max-tokens 256 [--spm-model tokenizer.model] [--chars-per-token 3.5]
"""

import argparse
import json
import subprocess
import sys


def read_docs(path):
    docs = []
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            if raw.strip():
                try:
                    docs.append(json.loads(raw)["text"])
                except (ValueError, KeyError, TypeError) as e:
                    sys.exit(f"error: {path}:{n}: {e}")
    return docs


def spm_counts(model, lines):
    """Token count of each line under the SentencePiece model (blank lines count 0)."""
    nonblank = [ln for ln in lines if ln.strip()]
    r = subprocess.run(["spm_encode", f"--model={model}", "--output_format=id"], input="\n".join(nonblank) + "\n",
                       capture_output=True, text=True, check=True)
    counts = iter(len(s.split()) for s in r.stdout.split("\n")[:len(nonblank)])
    return [next(counts) if ln.strip() else 0 for ln in lines]


def split_long(line, count, budget):
    """A line over the budget, cut between words into pieces of about `budget` tokens."""
    words = line.split(" ")
    per_word = max(count / max(1, len(words)), 1e-6)
    step = max(1, int(budget / per_word))
    return [(" ".join(words[i:i + step]), min(budget, int(per_word * len(words[i:i + step])) + 1))
            for i in range(0, len(words), step)]


def chunk(doc_lines, counts, budget):
    chunks, cur, used = [], [], 0
    for line, c in zip(doc_lines, counts):
        pieces = [(line, c)] if c <= budget else split_long(line, c, budget)
        for text, n in pieces:
            n += 1  # the newline
            if cur and used + n > budget:
                chunks.append("\n".join(cur).strip("\n"))
                cur, used = [], 0
            if not cur and not text.strip():
                continue  # no chunk starts with a blank line
            cur.append(text)
            used += n
    if cur:
        chunks.append("\n".join(cur).strip("\n"))
    return [c for c in chunks if c.strip()]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("inp")
    ap.add_argument("out")
    ap.add_argument("--max-tokens", type=int, required=True, help="the training --seq-len")
    ap.add_argument("--spm-model", default="")
    ap.add_argument("--chars-per-token", type=float, default=3.5)
    ap.add_argument("--margin", type=float, default=0.06, help="share of --max-tokens kept free")
    a = ap.parse_args(argv)
    budget = int(a.max_tokens * (1 - a.margin)) - 2  # BOS and EOS
    if budget < 8:
        sys.exit("error: --max-tokens is too small")
    docs = read_docs(a.inp)
    all_lines = [ln for d in docs for ln in d.split("\n")]
    if a.spm_model:
        counts = spm_counts(a.spm_model, all_lines)
    else:
        counts = [int(len(ln) / a.chars_per_token) + 1 if ln.strip() else 0 for ln in all_lines]
    n_chunks = pos = 0
    with open(a.out, "w", encoding="utf-8") as out:
        for d in docs:
            lines = d.split("\n")
            for c in chunk(lines, counts[pos:pos + len(lines)], budget):
                out.write(json.dumps({"text": c}, ensure_ascii=False) + "\n")
                n_chunks += 1
            pos += len(lines)
    print(f"wrote {a.out}: {n_chunks} chunks of at most ~{budget} tokens from {len(docs)} documents "
          f"({sum(counts)} tokens {'counted by spm_encode' if a.spm_model else 'estimated'})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
