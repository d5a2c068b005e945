"""Tests of the base-model corpus, tokenizer-conversion and dataset scripts (scripts/corpus, scripts/datasets).

Why: these scripts run for minutes on hundreds of MB of Debian documentation, which CI does not install; here
each piece runs on tiny inputs made in the test (HTML, man and Markdown pages, a hand-encoded SentencePiece
protobuf), in well under a second. When PLM_POCKETLM names the pocketlm binary, the converted vocabulary is also
loaded and used by pocketlm itself.
"""

import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "corpus"))
sys.path.insert(0, os.path.join(ROOT, "scripts", "datasets"))

import build_corpus  # noqa: E402
import chunk_corpus  # noqa: E402
import dedup  # noqa: E402
import make_datasets  # noqa: E402
import spm_to_gguf  # noqa: E402
import textextract  # noqa: E402

PAGE = """<html><head><title>T</title><script>var x = 1;</script></head><body>
<div class="related" role="navigation"><a href="a.html">Previous</a> | <a href="b.html">Next</a></div>
<div class="body" role="main">
<h1>Queues<a class="headerlink" href="#q">¶</a></h1>
<p>A queue holds items
   in order.</p>
<pre>def put(x):
\treturn x
</pre>
<table><tr><th>name</th><th>meaning</th></tr><tr><td>put</td><td>add an item</td></tr></table>
<ul><li>first<li>second</ul>
</div>
<div class="footer">&copy; Copyright 2001 Example.</div>
</body></html>"""

MAN = r""".\" a comment
.TH string n 8.1 Tcl
.so man.macros
.SH NAME
string \- Manipulate strings
.SH DESCRIPTION
Performs one of several \fBstring\fR operations,
depending on \fIoption\fR.
.CS
string first a 0a23
.CE
.PP
Returns \-1 when not found.
"""


def pb_varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def pb_field(num, wire, payload):
    key = pb_varint(num << 3 | wire)
    if wire == 0:
        return key + pb_varint(payload)
    if wire == 5:
        return key + payload
    return key + pb_varint(len(payload)) + payload


def make_spm_model(pieces, normalizer="identity", remove_ws=False):
    """A sentencepiece ModelProto with the given (piece, score, type) list, BPE, byte fallback."""
    msg = b""
    for text, score, typ in pieces:
        p = pb_field(1, 2, text.encode()) + pb_field(2, 5, struct.pack("<f", score)) + pb_field(3, 0, typ)
        msg += pb_field(1, 2, p)
    trainer = pb_field(3, 0, 2) + pb_field(35, 0, 1) + pb_field(40, 0, 0) + pb_field(41, 0, 1) + pb_field(42, 0, 2) \
        + pb_field(43, 0, (1 << 64) - 1)  # pad_id -1, as protobuf encodes a negative int32
    norm = pb_field(1, 2, normalizer.encode()) + pb_field(3, 0, 1) + pb_field(4, 0, int(remove_ws))
    return msg + pb_field(2, 2, trainer) + pb_field(3, 2, norm)


def tiny_pieces():
    pieces = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3), ("<|im_start|>", 0.0, 4), ("<|im_end|>", 0.0, 4)]
    pieces += [(f"<0x{b:02X}>", 0.0, 6) for b in range(256)]
    for i, text in enumerate(["\u2581a", "\u2581ab", "bc", "\u2581abc", "a", "b", "c", "\u2581"]):
        pieces.append((text, -float(i), 1))
    return pieces


def read_gguf_kv(path):
    """Metadata of a GGUF v3 file: {key: value} (arrays as lists)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b"GGUF"
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", data, 4)
    pos = 24

    def string():
        nonlocal pos
        (n,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        s = data[pos:pos + n].decode()
        pos += n
        return s

    def value(t):
        nonlocal pos
        fmt = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
        if t == 8:
            return string()
        if t == 9:
            et, n = struct.unpack_from("<IQ", data, pos)
            pos += 12
            return [value(et) for _ in range(n)]
        (v,) = struct.unpack_from("<" + fmt[t], data, pos)
        pos += struct.calcsize(fmt[t])
        return v

    kv = {}
    for _ in range(n_kv):
        k = string()
        (t,) = struct.unpack_from("<I", data, pos)
        pos += 4
        kv[k] = value(t)
    assert version == 3 and n_tensors == 0
    return kv


class TextExtractTest(unittest.TestCase):
    def test_html_main_content_code_and_tables(self):
        paras = textextract.html_to_paragraphs(PAGE)
        kept = [p for p in paras if not textextract.is_boilerplate(p)]
        self.assertEqual(kept[0], "Queues")
        self.assertEqual(kept[1], "A queue holds items in order.")
        self.assertTrue(kept[2].pre)
        self.assertEqual(kept[2], "def put(x):\n    return x")
        self.assertIn("name | meaning", kept)
        self.assertIn("put | add an item", kept)
        self.assertIn("first", kept)
        self.assertIn("second", kept)
        text = "\n".join(paras)
        for gone in ("var x", "Previous", "Copyright", "\u00b6"):
            self.assertNotIn(gone, text)

    def test_man_page(self):
        paras = textextract.man_to_paragraphs(MAN)
        self.assertEqual(paras[0], "Name")
        self.assertEqual(paras[1], "string - Manipulate strings")
        self.assertIn("Performs one of several string operations, depending on option.", paras)
        code = [p for p in paras if p.pre]
        self.assertEqual(code, ["string first a 0a23"])
        self.assertIn("Returns -1 when not found.", paras)

    def test_markdown(self):
        md = "# Title\n\nSome [link](http://x) and `code`.\n<!-- hidden -->\n\n```js\nconst a = 1;\n```\n"
        paras = textextract.markdown_to_paragraphs(md)
        self.assertEqual(paras[:2], ["Title", "Some link and code."])
        self.assertTrue(paras[2].pre)
        self.assertEqual(paras[2], "const a = 1;")

    def test_boilerplate(self):
        P = textextract.Para.make
        for b in ("Previous topic", "\u00a9 Copyright 2020, the authors.", "Home | Table of contents | Index | Modules",
                  "This page last modified on 2022-10-26"):
            self.assertTrue(textextract.is_boilerplate(P(b)), b)
        self.assertFalse(textextract.is_boilerplate(P("The copyright of this module belongs to its authors, who")))
        self.assertFalse(textextract.is_boilerplate(P("a | b | c", pre=True)))


class DedupTest(unittest.TestCase):
    def test_paragraphs(self):
        d = dedup.ParagraphDedup(min_chars=10)
        self.assertTrue(d.keep("This paragraph is long enough."))
        self.assertFalse(d.keep("this  paragraph is LONG enough."))
        self.assertTrue(d.keep("Short."))
        self.assertTrue(d.keep("Short."))

    def test_near_duplicates(self):
        words = [f"w{i}" for i in range(400)]
        a = " ".join(words)
        b = " ".join(words[:200] + ["changed"] + words[201:])  # one word differs
        c = " ".join(reversed(words))
        sa, sb, sc = (dedup.shingle_signature(t) for t in (a, b, c))
        self.assertGreater(dedup.estimate_jaccard(sa, sb), 0.9)
        self.assertLess(dedup.estimate_jaccard(sa, sc), 0.1)
        index = dedup.NearDupIndex(0.8)
        index.add("a", sa)
        self.assertEqual(index.find(sb), "a")
        self.assertIsNone(index.find(sc))
        self.assertIsNone(dedup.shingle_signature("too short"))


class BuildCorpusTest(unittest.TestCase):
    def test_end_to_end(self):
        with tempfile.TemporaryDirectory() as tmp:
            root = os.path.join(tmp, "docs")
            os.makedirs(os.path.join(root, "sub"))
            body = " ".join(f"word{i}" for i in range(120))
            for name, text in (("a.html", f"<p>{body} alpha.</p>"), ("sub/b.html", f"<p>{body} alpha.</p>"),
                               ("c.html", "<p>" + " ".join(f"other{i}" for i in range(120)) + "</p>"),
                               ("genindex.html", "<p>index page</p>"), ("short.html", "<p>too short</p>")):
                with open(os.path.join(root, name), "w") as f:
                    f.write(f"<html><body>{text}</body></html>")
            sources = os.path.join(tmp, "sources.tsv")
            with open(sources, "w") as f:
                f.write(f"# test\nfake-doc-pkg\tMIT\thtml\t{root}\t**/*.html\tgenindex*.html\n")
            out = os.path.join(tmp, "out")
            build_corpus.main([out, "--sources", sources, "--val-fraction", "0"])
            with open(os.path.join(out, "train.jsonl")) as f:
                docs = [json.loads(line) for line in f]
            self.assertEqual(sorted(d["path"] for d in docs), ["a.html", "c.html"])  # b: duplicate of a
            with open(os.path.join(out, "stats.json")) as f:
                st = json.load(f)["sources"]["fake-doc-pkg"]
            self.assertEqual((st["files"], st["docs_short"], st["docs_exact_dup"]), (4, 1, 1))
            with open(os.path.join(out, "SOURCES.md")) as f:
                self.assertIn("| fake-doc-pkg |", f.read())


class ChunkTest(unittest.TestCase):
    def test_chunks_fit(self):
        lines = [("word " * n).strip() for n in (3, 50, 400, 2, 0, 7)]
        counts = [len(ln.split()) for ln in lines]
        chunks = chunk_corpus.chunk(lines, counts, 60)
        self.assertEqual(sum(len(c.split()) for c in chunks), sum(counts))
        for c in chunks:
            self.assertLessEqual(len(c.split()), 60)


class SpmToGgufTest(unittest.TestCase):
    def test_convert(self):
        with tempfile.TemporaryDirectory() as tmp:
            model, out = os.path.join(tmp, "t.model"), os.path.join(tmp, "t.gguf")
            with open(model, "wb") as f:
                f.write(make_spm_model(tiny_pieces()))
            spm_to_gguf.main([model, out])
            kv = read_gguf_kv(out)
            self.assertEqual(kv["tokenizer.ggml.model"], "llama")
            toks, types = kv["tokenizer.ggml.tokens"], kv["tokenizer.ggml.token_type"]
            self.assertEqual(len(toks), len(tiny_pieces()))
            self.assertEqual(types[:6], [2, 3, 3, 3, 3, 6])  # chat markers: user-defined -> control
            self.assertEqual(toks[5], "<0x00>")
            self.assertEqual((kv["tokenizer.ggml.bos_token_id"], kv["tokenizer.ggml.eos_token_id"],
                              kv["tokenizer.ggml.unknown_token_id"]), (1, 2, 0))
            self.assertNotIn("tokenizer.ggml.padding_token_id", kv)
            self.assertEqual(kv["tokenizer.ggml.eot_token_id"], 4)
            self.assertTrue(kv["tokenizer.ggml.add_bos_token"])
            self.assertIn("<|im_start|>", kv["tokenizer.chat_template"])
            self.assertAlmostEqual(kv["tokenizer.ggml.scores"][262], -1.0)
            binary = os.environ.get("PLM_POCKETLM")
            if binary:
                r = subprocess.run([binary, "tokenize", "-m", out, "--no-bos"], input=b"abc ab\xe2\x82\xac",
                                   capture_output=True, check=True)
                # "▁abc" (264), "▁ab" (262), then the 3 bytes of U+20AC as byte tokens
                self.assertEqual(r.stdout.split(), [b"264", b"262", b"231", b"135", b"177"])

    def test_refuses_normalizer(self):
        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, "t.model")
            with open(model, "wb") as f:
                f.write(make_spm_model(tiny_pieces(), normalizer="nmt_nfkc", remove_ws=True))
            with self.assertRaises(SystemExit) as e:
                spm_to_gguf.main([model, os.path.join(tmp, "t.gguf")])
            self.assertIn("normalisation", str(e.exception.code))

    def test_rejects_garbage(self):
        with self.assertRaises(ValueError):
            spm_to_gguf.SpmModel(b"\x0a\xff\xff")


class DatasetsTest(unittest.TestCase):
    NAMES = ("bug-finder", "wellness")

    def run_gen(self, out, seed=1):
        make_datasets.main([out, "--seed", str(seed), "--train", "150", "--val", "30", "--test", "30"])
        result = {}
        for name in self.NAMES:
            for split in ("train", "val", "test"):
                with open(os.path.join(out, f"{name}-{split}.jsonl"), encoding="utf-8") as f:
                    result[name, split] = f.read()
        return result

    @staticmethod
    def bug_is_visible(kind, lang, code):
        """An independent check of the label: the snippet shows the kind of bug it is labelled with."""
        import re
        lines = code.split("\n")
        if kind == "missing colon":
            return any(re.match(r"\s*(def|for|if|while|else)\b", ln) and not ln.endswith(":") for ln in lines)
        if kind == "missing semicolon":
            return any(re.match(r"\s*(return|int \w+ =|\w+\+\+|\w+--|\w+ \+=|printf)", ln)
                       and not ln.endswith(";") for ln in lines)
        if kind == "unbalanced parenthesis":
            return code.count("(") != code.count(")")
        if kind == "misspelled keyword":
            typos = make_datasets.PY_TYPOS if lang == "Python" else make_datasets.C_TYPOS
            return any(re.search(rf"\b{t}\b", code) for ts in typos.values() for t in ts)
        if kind == "assignment instead of comparison":
            return re.search(r"\bif\b[^=]*[^=!<>]=[^=]", code) is not None
        if kind in ("wrong comparison operator", "off-by-one"):
            return True  # needs the comment's meaning: covered by the generator's own construction
        return False

    def test_deterministic_disjoint_and_checkable(self):
        with tempfile.TemporaryDirectory() as tmp:
            a = self.run_gen(os.path.join(tmp, "a"))
            b = self.run_gen(os.path.join(tmp, "b"))
            self.assertEqual(a, b)
            c = self.run_gen(os.path.join(tmp, "c"), seed=2)
            self.assertNotEqual(a, c)
            for name in self.NAMES:
                splits = {s: [json.loads(x) for x in a[name, s].splitlines()] for s in ("train", "val", "test")}
                self.assertEqual([len(splits[s]) for s in ("train", "val", "test")], [150, 30, 30])
                prompts = {s: [ex["messages"][0]["content"] for ex in splits[s]] for s in splits}
                for s in splits:
                    self.assertEqual(len(set(prompts[s])), len(prompts[s]))  # unique within a split
                for x, y in (("train", "val"), ("train", "test"), ("val", "test")):
                    self.assertFalse(set(prompts[x]) & set(prompts[y]))
                for ex in (e for s in splits.values() for e in s):
                    user, reply = ex["messages"][0]["content"], ex["messages"][1]["content"]
                    if name == "bug-finder":
                        header, comment, code = user.split("\n", 2)
                        lang = header.split()[-2]
                        self.assertIn(lang, ("Python", "C"))
                        self.assertEqual(reply, ex["bug"])
                        self.assertTrue(self.bug_is_visible(reply, lang, code), user + " -> " + reply)
                    else:
                        self.assertEqual(reply, self.triage(user), user)

    @staticmethod
    def triage(question):
        """The wellness rule recomputed from the question text: the highest symptom level, raised by one (up to
        "see a doctor") when the symptoms have lasted weeks or months."""
        levels = [lv for lv, phrases in make_datasets.SYMPTOMS.items() for p in phrases if p.lower() in question.lower()]
        level = max(levels)
        if any(w in question for w in ("weeks", "month")) and level < 2:
            level += 1
        return make_datasets.LEVELS[level]

    def test_a_problem_never_spans_two_splits(self):
        # the generators' group keys (a correct snippet; a symptom combination) each land in one split
        import random
        sizes = {"train": 150, "val": 30, "test": 30}
        for name, gen in (("bug-finder", make_datasets.bug_finder_examples(random.Random("1:bugs"))),
                          ("wellness", make_datasets.wellness_examples(random.Random("1:wellness")))):
            key_of = {}

            def recording(g):
                for key, ex in g:
                    key_of[json.dumps(ex, sort_keys=True)] = key
                    yield key, ex

            out = make_datasets.make_splits(recording(gen), sizes, 1, name)
            split_of_key = {}
            for split, examples in out.items():
                for ex in examples:
                    key = key_of[json.dumps(ex, sort_keys=True)]
                    self.assertEqual(split_of_key.setdefault(key, split), split, key)


if __name__ == "__main__":
    unittest.main()
