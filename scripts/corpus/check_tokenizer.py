"""Checks that pocketlm tokenizes exactly as SentencePiece does with a converted vocabulary.

Why: the base model's tokenizer is trained by spm_train and run by pocketlm (llama.cpp's SentencePiece
algorithm: merge the adjacent pair whose merged piece has the highest score). They must give the same ids, or
the model sees different token sequences in training and in use than the tokenizer was built for. For each
line of LINES.txt this compares `spm_encode --output_format=id` (no BOS) with `pocketlm tokenize --no-bos`, and
prints the agreement and the first disagreements with their pieces.

usage: check_tokenizer.py MODEL.model VOCAB.gguf LINES.txt --pocketlm BIN [--show 10] [--jobs 2] [--json OUT]
Exit status 0 when every line agrees, 1 otherwise.
"""

import argparse
import concurrent.futures
import json
import subprocess
import sys


def spm(args, model, lines):
    r = subprocess.run(["spm_encode", f"--model={model}"] + args, input="\n".join(lines) + "\n",
                       capture_output=True, text=True, check=True)
    out = r.stdout.split("\n")
    return out[:len(lines)]


def pocketlm_ids(binary, vocab, line):
    r = subprocess.run([binary, "tokenize", "-m", vocab, "--no-bos"], input=line.encode("utf-8"),
                       capture_output=True, check=False)
    if r.returncode != 0:
        return None, r.stderr.decode("utf-8", "replace").strip()
    return r.stdout.decode().split(), ""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("vocab")
    ap.add_argument("lines")
    ap.add_argument("--pocketlm", required=True)
    ap.add_argument("--show", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", default="", help="also write the counts and the disagreements here")
    a = ap.parse_args(argv)
    with open(a.lines, encoding="utf-8") as f:
        lines = [ln.rstrip("\n") for ln in f if ln.strip()]
    if not lines:
        sys.exit(f"error: {a.lines} has no lines")
    spm_ids = [s.split() for s in spm(["--output_format=id"], a.model, lines)]
    spm_pieces = [s.split(" ") for s in spm(["--output_format=piece"], a.model, lines)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as ex:
        ours = list(ex.map(lambda ln: pocketlm_ids(a.pocketlm, a.vocab, ln), lines))
    agree = tokens = 0
    bad = []
    for i, line in enumerate(lines):
        ids, err = ours[i]
        tokens += len(spm_ids[i])
        if ids == spm_ids[i]:
            agree += 1
            continue
        bad.append({"line": line, "spm": spm_ids[i], "spm_pieces": spm_pieces[i], "pocketlm": ids, "error": err})
    print(f"tokenizer agreement: {agree}/{len(lines)} lines identical ({100.0 * agree / len(lines):.2f}%), "
          f"{tokens} spm tokens, {sum(len(ln) for ln in lines)} characters")
    for b in bad[:a.show]:
        print(f"  line: {b['line'][:200]!r}")
        print(f"    spm:      {' '.join(b['spm'])}")
        print(f"    pieces:   {' '.join(b['spm_pieces'])}")
        print(f"    pocketlm: {' '.join(b['pocketlm']) if b['pocketlm'] is not None else 'error: ' + b['error']}")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump({"lines": len(lines), "agree": agree, "tokens": tokens, "disagreements": bad}, f, indent=1,
                      ensure_ascii=False)
    return 0 if agree == len(lines) else 1


if __name__ == "__main__":
    sys.exit(main())
