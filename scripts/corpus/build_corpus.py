"""Builds pocketlm's base-model corpus from installed Debian documentation packages (stdlib only, offline).

Why: pocketlm's own small base model must be trained on text whose license allows shipping the weights, and the
build must run anywhere pocketlm builds, without downloads. Debian's documentation packages (installed with apt
by build_corpus.sh) are such text; sources.tsv lists them with their licenses.

Pipeline (deterministic: files are read in sorted order and every choice is made by a hash of the path):
  1. extract paragraphs from each file (textextract.py: HTML, troff man pages, Markdown), drop boilerplate;
  2. drop documents with fewer than --min-words words, exact duplicate documents and near-duplicates
     (dedup.NearDupIndex: MinHash over word 5-grams, Jaccard >= --near-dup);
  3. drop paragraphs already kept elsewhere (dedup.ParagraphDedup), then short documents again;
  4. if the text exceeds --max-mb, keep a deterministic subset of documents (lowest path hash first);
  5. split by document: a document goes to validation when its path hash falls in --val-fraction.
Output in OUT_DIR: train.jsonl and val.jsonl ({"text", "source", "path"} per document; the trainer reads "text"
and ignores the rest), SOURCES.md (package, version, license, files, bytes and words kept) and stats.json.

usage: build_corpus.py OUT_DIR [--sources sources.tsv] [--only PKG,...] [--max-mb 60] [--val-fraction 0.02]
                       [--min-words 50] [--near-dup 0.8] [--max-files N]
"""

import argparse
import fnmatch
import glob
import hashlib
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dedup import NearDupIndex, ParagraphDedup, shingle_signature  # noqa: E402
from textextract import (html_to_paragraphs, is_boilerplate, man_to_paragraphs,  # noqa: E402
                         markdown_to_paragraphs, read_text_file)

EXTRACTORS = {"html": html_to_paragraphs, "man": man_to_paragraphs, "md": markdown_to_paragraphs}


class Source:
    def __init__(self, fields, line_no):
        if len(fields) < 5:
            raise ValueError(f"sources line {line_no}: expected at least 5 tab-separated columns, got {len(fields)}")
        self.package, self.license, self.format, self.root, inc = fields[:5]
        exc = fields[5] if len(fields) > 5 else ""
        if self.format not in EXTRACTORS:
            raise ValueError(f"sources line {line_no}: format '{self.format}' is not one of {sorted(EXTRACTORS)}")
        self.include = [g for g in inc.split(",") if g]
        self.exclude = [g for g in exc.split(",") if g]

    def files(self):
        found = set()
        for g in self.include:
            found.update(glob.glob(os.path.join(self.root, g), recursive=True))
        out = []
        for path in sorted(found):
            rel = os.path.relpath(path, self.root)
            if os.path.isfile(path) and not any(fnmatch.fnmatch(rel, g) for g in self.exclude):
                out.append(rel)
        return out


def read_sources(path):
    sources = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.strip() and not line.startswith("#"):
                sources.append(Source(line.split("\t"), i))
    return sources


def package_version(pkg):
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True, check=False)
        return r.stdout.strip() if r.returncode == 0 else ""
    except OSError:
        return ""


def copyright_license(pkg):
    """The License: of the first "Files: *" paragraph of the package's copyright file (machine-readable
    format), or '' when the file is free-form."""
    path = f"/usr/share/doc/{pkg}/copyright"
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return ""
    for para in text.split("\n\n"):
        if para.lstrip().startswith("Files: *"):
            for line in para.split("\n"):
                if line.startswith("License:"):
                    return line[len("License:"):].strip()
    return ""


def path_hash(key):
    return int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big")


def word_count(text):
    return len(text.split())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--sources", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "sources.tsv"))
    ap.add_argument("--only", default="", help="comma-separated packages to use (default: all in --sources)")
    ap.add_argument("--max-mb", type=float, default=60.0, help="cap on the kept text, MB of UTF-8")
    ap.add_argument("--val-fraction", type=float, default=0.02)
    ap.add_argument("--min-words", type=int, default=50)
    ap.add_argument("--near-dup", type=float, default=0.8, help="Jaccard similarity above which a document is "
                    "a near-duplicate of an earlier one")
    ap.add_argument("--max-files", type=int, default=0, help="at most N files per source (0: all); for trials")
    a = ap.parse_args(argv)

    sources = read_sources(a.sources)
    if a.only:
        wanted = set(a.only.split(","))
        unknown = wanted - {s.package for s in sources}
        if unknown:
            sys.exit(f"error: --only names packages not in {a.sources}: {', '.join(sorted(unknown))}")
        sources = [s for s in sources if s.package in wanted]
    os.makedirs(a.out_dir, exist_ok=True)
    t0 = time.time()

    # 1. extract
    docs = []  # dicts: source, path, paras
    stats = {}
    for src in sources:
        st = stats[src.package] = {"files": 0, "files_unreadable": 0, "paragraphs": 0, "boilerplate_paragraphs": 0,
                                   "docs_short": 0, "docs_exact_dup": 0, "docs_near_dup": 0, "dup_paragraphs": 0,
                                   "docs_over_budget": 0, "docs": 0, "docs_val": 0, "bytes": 0, "words": 0,
                                   "bytes_val": 0, "words_val": 0, "code_bytes": 0, "code_heavy_docs": 0}
        if not os.path.isdir(src.root):
            sys.exit(f"error: {src.root} (package {src.package}) is missing: install the package "
                     f"(scripts/install-deps.sh --corpus) or leave it out with --only")
        files = src.files()
        if a.max_files:
            files = files[:a.max_files]
        extract = EXTRACTORS[src.format]
        for rel in files:
            st["files"] += 1
            try:
                paras = extract(read_text_file(os.path.join(src.root, rel)))
            except (OSError, EOFError, ValueError) as e:  # a broken .gz, an unreadable file
                print(f"warning: {src.package}/{rel}: {e}", file=sys.stderr)
                st["files_unreadable"] += 1
                continue
            st["paragraphs"] += len(paras)
            kept = [p for p in paras if not is_boilerplate(p)]
            st["boilerplate_paragraphs"] += len(paras) - len(kept)
            docs.append({"source": src.package, "path": rel, "paras": kept})
        print(f"{src.package}: {st['files']} files, {time.time() - t0:.0f}s", file=sys.stderr)

    # 2. short, exact and near-duplicate documents
    index = NearDupIndex(a.near_dup)
    seen_docs = set()
    kept_docs = []
    for d in docs:
        st = stats[d["source"]]
        text = "\n\n".join(d["paras"])
        if word_count(text) < a.min_words:
            st["docs_short"] += 1
            continue
        h = hashlib.blake2b(" ".join(text.split()).lower().encode("utf-8"), digest_size=16).digest()
        if h in seen_docs:
            st["docs_exact_dup"] += 1
            continue
        seen_docs.add(h)
        sig = shingle_signature(text)
        key = f"{d['source']}/{d['path']}"
        if sig is not None:
            if index.find(sig) is not None:
                st["docs_near_dup"] += 1
                continue
            index.add(key, sig)
        kept_docs.append(d)
    print(f"dedup of documents: {len(docs)} -> {len(kept_docs)}, {time.time() - t0:.0f}s", file=sys.stderr)

    # 3. repeated paragraphs
    pdedup = ParagraphDedup()
    final = []
    for d in kept_docs:
        st = stats[d["source"]]
        paras = [p for p in d["paras"] if pdedup.keep(p)]
        st["dup_paragraphs"] += len(d["paras"]) - len(paras)
        text = "\n\n".join(paras)
        if word_count(text) < a.min_words:
            st["docs_short"] += 1
            continue
        code = sum(len(p.encode("utf-8")) for p in paras if p.pre)
        final.append({"source": d["source"], "path": d["path"], "text": text, "code": code})

    # 4. size cap
    budget = int(a.max_mb * 1e6)
    total = sum(len(d["text"].encode("utf-8")) for d in final)
    if total > budget:
        order = sorted(range(len(final)), key=lambda i: path_hash("keep:" + final[i]["source"] + "/" + final[i]["path"]))
        keep, used = set(), 0
        for i in order:
            n = len(final[i]["text"].encode("utf-8"))
            if used + n > budget:
                stats[final[i]["source"]]["docs_over_budget"] += 1
                continue
            keep.add(i)
            used += n
        final = [d for i, d in enumerate(final) if i in keep]

    # 5. split and write
    threshold = int(a.val_fraction * (1 << 64))
    n_train = n_val = 0
    with open(os.path.join(a.out_dir, "train.jsonl"), "w", encoding="utf-8") as ft, \
            open(os.path.join(a.out_dir, "val.jsonl"), "w", encoding="utf-8") as fv:
        for d in final:
            st = stats[d["source"]]
            is_val = path_hash("split:" + d["source"] + "/" + d["path"]) < threshold
            line = json.dumps({"text": d["text"], "source": d["source"], "path": d["path"]}, ensure_ascii=False)
            nbytes, nwords = len(d["text"].encode("utf-8")), word_count(d["text"])
            st["docs"] += 1
            st["bytes"] += nbytes
            st["words"] += nwords
            st["code_bytes"] += d["code"]
            st["code_heavy_docs"] += d["code"] > nbytes // 2
            if is_val:
                fv.write(line + "\n")
                st["docs_val"] += 1
                st["bytes_val"] += nbytes
                st["words_val"] += nwords
                n_val += 1
            else:
                ft.write(line + "\n")
                n_train += 1

    totals = {k: sum(s[k] for s in stats.values()) for k in next(iter(stats.values()))} if stats else {}
    summary = {"options": {k: v for k, v in vars(a).items() if k != "out_dir"}, "train_docs": n_train,
               "val_docs": n_val, "totals": totals, "sources": stats, "seconds": round(time.time() - t0, 1)}
    with open(os.path.join(a.out_dir, "stats.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    write_sources_md(os.path.join(a.out_dir, "SOURCES.md"), sources, stats, totals, a)
    print(f"wrote {a.out_dir}: {n_train} train + {n_val} validation documents, {totals.get('bytes', 0) / 1e6:.1f} MB, "
          f"{totals.get('words', 0) / 1e6:.2f} M words ({time.time() - t0:.0f}s)", file=sys.stderr)
    return 0


def write_sources_md(path, sources, stats, totals, a):
    lines = ["# Sources of the pocketlm base-model corpus", "",
             "Built by `scripts/corpus/build_corpus.sh` from Debian documentation packages. Every source is under a "
             "permissive license (or public domain); the *copyright file* column is what the package's "
             "`/usr/share/doc/PKG/copyright` says for `Files: *` (empty when that file is free-form).", "",
             f"Options: max {a.max_mb:g} MB, validation fraction {a.val_fraction:g}, min {a.min_words} words per "
             f"document, near-duplicate Jaccard >= {a.near_dup:g}.", "",
             "| package | version | license | copyright file | files used | docs (val) | MB kept | words kept | "
             "code share | dropped: boilerplate paras / dup paras / short / exact dup / near dup / over budget docs |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for src in sources:
        s = stats[src.package]
        files = f"`{src.root}/{{{','.join(src.include)}}}` ({s['files']})"
        code = f"{100 * s['code_bytes'] / s['bytes']:.0f}%" if s["bytes"] else "-"
        lines.append(
            f"| {src.package} | {package_version(src.package)} | {src.license} | {copyright_license(src.package)} | "
            f"{files} | {s['docs']} ({s['docs_val']}) | {s['bytes'] / 1e6:.2f} | {s['words']:,} | {code} | "
            f"{s['boilerplate_paragraphs']} / {s['dup_paragraphs']} / {s['docs_short']} / {s['docs_exact_dup']} / "
            f"{s['docs_near_dup']} / {s['docs_over_budget']} |")
    if totals:
        lines.append(f"| **total** | | | | {totals['files']} | {totals['docs']} ({totals['docs_val']}) | "
                     f"{totals['bytes'] / 1e6:.2f} | {totals['words']:,} | "
                     f"{100 * totals['code_bytes'] / max(1, totals['bytes']):.0f}% | |")
    lines += ["", "Code blocks (`<pre>`, man-page `.nf`/`.CS` displays) are kept with their indentation; *code share* "
              "is their share of the bytes. Excluded files per source are listed in `scripts/corpus/sources.tsv` "
              "(indexes, search pages, license pages, change logs).", ""]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
