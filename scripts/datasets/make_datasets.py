"""Generates pocketlm's two domain datasets, whose answers can be checked exactly (stdlib only, deterministic).

Why: the demo fine-tunes one LoRA adapter per domain on pocketlm's tiny base model and measures exact-match
accuracy on a test split, so each answer must be unique and computable. Both datasets are chat-format JSONL
({"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}, plus "bug" or "level": the answer's class,
for per-class accuracy; pocketlm ignores other fields), short enough for a 256-token context:

  bug-finder: a short Python or C snippet, whose first line states what it is meant to do, with exactly one
    injected bug -> its kind: missing colon, missing semicolon, unbalanced parenthesis, wrong comparison
    operator, off-by-one, misspelled keyword, assignment instead of comparison.
  wellness: a symptom description (one or two symptoms and how long they have lasted) -> one of four triage
    levels: self-care at home, ask a pharmacist, see a doctor, call emergency services. A synthetic rule table
    (SYMPTOMS below), not medical advice.

The answers are short classes on purpose: a 8M-parameter model trained on a few million tokens cannot copy
digits or identifiers from its prompt (see bug_finder_examples), so replies that must reproduce parts of the
question (corrected code, converted quantities) stay at 0% whatever the adapter learns.

Splits never share a problem: every variant of one correct snippet, and every phrasing of one symptom
combination, lands in the same split (chosen by a hash of it), and examples are unique within a split.

usage: make_datasets.py OUT_DIR [--seed S] [--train N] [--val N] [--test N]
writes OUT_DIR/{bug-finder,wellness}-{train,val,test}.jsonl
"""

import argparse
import hashlib
import json
import os
import random
import re
import sys

# --- code fixer ----------------------------------------------------------------------------------------------

NAMES = ["a", "b", "x", "y", "n", "m", "k", "v", "w", "p", "q", "s", "t", "u", "z", "num", "val", "cnt", "idx",
         "lo", "hi", "acc", "res", "total", "item", "left", "right", "size", "step", "limit"]
FUNCS = ["f", "g", "h", "calc", "pick", "best", "check", "run", "solve", "make", "get_value", "compute", "scan",
         "walk", "fold", "count_up", "process", "helper", "main_loop", "work"]
LISTS = ["xs", "ys", "nums", "vals", "items", "data", "arr", "seq"]


def _fresh(rng, pool, used):
    while True:
        v = rng.choice(pool)
        if v not in used:
            used.add(v)
            return v


# Templates: (language, intent comment, code). {names} are filled with distinct identifiers, {K} {N} {M} with
# small numbers. The intent comment makes the one correct fix unambiguous (e.g. which comparison is meant).
PY_TEMPLATES = [
    ("# return the larger of {a} and {b}",
     "def {f}({a}, {b}):\n    if {a} > {b}:\n        return {a}\n    return {b}"),
    ("# return the smaller of {a} and {b}",
     "def {f}({a}, {b}):\n    if {a} < {b}:\n        return {a}\n    return {b}"),
    ("# return the sum of the numbers in {xs}",
     "def {f}({xs}):\n    {t} = 0\n    for {x} in {xs}:\n        {t} += {x}\n    return {t}"),
    ("# print {i} * {K} for {i} from 0 to {N}",
     "for {i} in range({N1}):\n    print({i} * {K})"),
    ("# return the sum of 1 to {n}",
     "def {f}({n}):\n    {t} = 0\n    for {i} in range(1, {n} + 1):\n        {t} += {i}\n    return {t}"),
    ("# keep the numbers in {xs} that are divisible by {K}",
     "def {f}({xs}):\n    return [{x} for {x} in {xs} if {x} % {K} == 0]"),
    ("# count down from {N} to 1",
     "{i} = {N}\nwhile {i} > 0:\n    print({i})\n    {i} -= 1"),
    ("# return True if {a} equals {b}",
     "def {f}({a}, {b}):\n    if {a} == {b}:\n        return True\n    return False"),
    ("# return the number of items in {xs} greater than {K}",
     "def {f}({xs}):\n    {t} = 0\n    for {x} in {xs}:\n        if {x} > {K}:\n            {t} += 1\n    return {t}"),
    ("# print the first {N} even numbers",
     "for {i} in range({N}):\n    print({i} * 2)"),
]
C_TEMPLATES = [
    ("// return the larger of {a} and {b}",
     "int {f}(int {a}, int {b}) {\n    if ({a} > {b}) {\n        return {a};\n    }\n    return {b};\n}"),
    ("// return the sum of 0 to {n} - 1",
     "int {f}(int {n}) {\n    int {t} = 0;\n    for (int {i} = 0; {i} < {n}; {i}++) {\n        {t} += {i};\n    }\n"
     "    return {t};\n}"),
    ("// return the sum of the first {n} values of {xs}",
     "int {f}(const int *{xs}, int {n}) {\n    int {t} = 0;\n    for (int {i} = 0; {i} < {n}; {i}++) {\n"
     "        {t} += {xs}[{i}];\n    }\n    return {t};\n}"),
    ("// return 1 if {a} equals {b}, else 0",
     "int {f}(int {a}, int {b}) {\n    if ({a} == {b}) {\n        return 1;\n    }\n    return 0;\n}"),
    ("// return {a} times {K}",
     "int {f}(int {a}) {\n    return {a} * {K};\n}"),
    ("// count down from {N} to 1",
     "void {f}(void) {\n    int {i} = {N};\n    while ({i} > 0) {\n        printf(\"%d\\n\", {i});\n"
     "        {i}--;\n    }\n}"),
]

PY_TYPOS = {"return": ["retrun", "retun", "reutrn"], "while": ["whlie", "wihle"], "for": ["fro", "ofr"],
            "def": ["dfe", "edf"], "else": ["esle"], "if": ["fi"], "in": ["ni"]}
C_TYPOS = {"return": ["retrun", "retun", "reutrn"], "while": ["whlie", "wihle"], "for": ["fro"], "int": ["itn", "nit"],
           "void": ["viod"], "if": ["fi"]}
# Only swaps that change what the code does for some input (">" -> ">=" would not change a max function).
SWAP_OPS = {">": ["<"], "<": [">"], "==": ["!="]}


def fill(template, rng):
    used = set()
    vals = {}
    for key in ("a", "b", "x", "t", "i", "n"):
        vals[key] = _fresh(rng, NAMES, used)
    vals["f"] = _fresh(rng, FUNCS, used)
    vals["xs"] = _fresh(rng, LISTS, used)
    n = rng.randint(3, 12)
    vals.update(K=str(rng.randint(2, 9)), N=str(n), N1=str(n + 1))
    comment, code = template

    def sub(s):  # not str.format: C code has braces of its own
        return re.sub(r"\{(\w+)\}", lambda m: vals.get(m.group(1), m.group(0)), s)

    return sub(comment), sub(code)


def _lines_with(code, pred):
    return [i for i, ln in enumerate(code.split("\n")) if pred(ln)]


def _replace_line(code, idx, new):
    lines = code.split("\n")
    lines[idx] = new
    return "\n".join(lines)


def inject_bug(code, lang, rng):
    """(broken code, bug kind), or None when no bug of the drawn kind fits this snippet."""
    kinds = ["colon" if lang == "py" else "semicolon", "paren", "operator", "off_by_one", "keyword",
             "assign"]
    kind = rng.choice(kinds)
    lines = code.split("\n")
    if kind == "colon":
        cand = _lines_with(code, lambda ln: ln.endswith(":"))
        if not cand:
            return None
        i = rng.choice(cand)
        return _replace_line(code, i, lines[i][:-1]), "missing colon"
    if kind == "semicolon":
        cand = _lines_with(code, lambda ln: ln.endswith(";"))
        if not cand:
            return None
        i = rng.choice(cand)
        return _replace_line(code, i, lines[i][:-1]), "missing semicolon"
    if kind == "paren":
        cand = _lines_with(code, lambda ln: ")" in ln)
        if not cand:
            return None
        i = rng.choice(cand)
        ln = lines[i]
        j = ln.rfind(")")
        return _replace_line(code, i, ln[:j] + ln[j + 1:]), "unbalanced parenthesis"
    if kind == "operator":
        # a comparison inside an if / while / for condition
        cand = []
        for i, ln in enumerate(lines):
            for m in re.finditer(r" (==|<=|>=|<|>) ", ln):
                if re.search(r"\b(if|while|for)\b", ln) and "range" not in ln:
                    cand.append((i, m))
        if not cand:
            return None
        i, m = rng.choice(cand)
        op = m.group(1)
        new = rng.choice(SWAP_OPS[op])
        ln = lines[i]
        return _replace_line(code, i, ln[:m.start(1)] + new + ln[m.end(1):]), "wrong comparison operator"
    if kind == "off_by_one":
        for i, ln in enumerate(lines):
            m = re.search(r"range\(1, (\w+) \+ 1\)", ln)
            if m:
                return _replace_line(code, i, ln.replace(m.group(0), f"range(1, {m.group(1)})")), "off-by-one"
            m = re.search(r"range\((\d+)\)", ln)
            if m:
                bad = str(int(m.group(1)) + rng.choice([-1, 1]))
                return _replace_line(code, i, ln.replace(m.group(0), f"range({bad})")), "off-by-one"
            m = re.search(r"for \(int (\w+) = 0; \1 < (\w+);", ln)
            if m:
                return _replace_line(code, i, ln.replace(f"{m.group(1)} < {m.group(2)}",
                                                          f"{m.group(1)} <= {m.group(2)}")), "off-by-one"
        return None
    if kind == "keyword":
        typos = PY_TYPOS if lang == "py" else C_TYPOS
        cand = []
        for i, ln in enumerate(lines):
            if ln.lstrip().startswith(("#", "//")):
                continue
            for kw in typos:
                for m in re.finditer(rf"\b{kw}\b", ln):
                    cand.append((i, m, kw))
        if not cand:
            return None
        i, m, kw = rng.choice(cand)
        ln = lines[i]
        return _replace_line(code, i, ln[:m.start()] + rng.choice(typos[kw]) + ln[m.end():]), "misspelled keyword"
    if kind == "assign":
        cand = [i for i, ln in enumerate(lines) if re.search(r"\bif\b.* == ", ln)]
        if not cand:
            return None
        i = rng.choice(cand)
        return _replace_line(code, i, lines[i].replace(" == ", " = ", 1)), "assignment instead of comparison"
    return None


def bug_finder_examples(rng):
    """Yields (group key, example) forever: snippet -> the kind of its one bug ("missing colon", ...).

    Why a diagnosis and not the corrected snippet: replying with corrected code means copying identifiers and
    numbers from the prompt, which needs induction heads that a model trained on a few million tokens does not
    have (pocketlm's base scored 0% on corrected snippets and on numeric unit conversions, whatever the
    adapter's training budget). Naming the bug needs only cues in the snippet (a misspelled keyword, a line
    ending without its colon, a comparison that contradicts the comment), which an adapter can learn in minutes."""
    while True:
        lang = rng.choice(["py", "py", "c"])
        template = rng.choice(PY_TEMPLATES if lang == "py" else C_TEMPLATES)
        comment, code = fill(template, rng)
        bug = inject_bug(code, lang, rng)
        if bug is None:
            continue
        broken, kind = bug
        if broken == code:
            continue
        language = "Python" if lang == "py" else "C"
        prompt = f"What is the bug in this {language} code?\n{comment}\n{broken}"
        yield comment + "\n" + code, {"messages": [{"role": "user", "content": prompt},
                                                  {"role": "assistant", "content": kind}], "bug": kind}


# --- wellness triage -----------------------------------------------------------------------------------------

# symptom phrase -> level (0 self-care, 1 pharmacist, 2 doctor, 3 emergency). A synthetic rule table for a
# checkable demo, not medical advice.
SYMPTOMS = {
    0: ["a mild headache", "sore muscles after running", "a stuffy nose", "tired eyes from the screen",
        "a small bruise on my arm", "trouble falling asleep", "dry skin on my hands", "a slight sore throat"],
    1: ["hay fever", "heartburn after meals", "a cold sore on my lip", "an itchy insect bite", "mild diarrhoea",
        "a blocked ear", "athlete's foot", "a sunburn"],
    2: ["a fever that will not go down", "a rash that keeps spreading", "a cough with green phlegm",
        "pain when I pass urine", "a lump in my neck", "ear pain with discharge", "a swollen painful knee",
        "blood in my stool"],
    3: ["chest pain spreading to my arm", "sudden trouble breathing", "a face drooping on one side",
        "severe bleeding that will not stop", "sudden confusion and slurred speech", "a seizure",
        "swelling of my lips and tongue", "fainting and not waking up properly"],
}
DURATIONS = [("since this morning", 0), ("since yesterday", 0), ("for two days", 0), ("for a few days", 0),
             ("for three weeks", 1), ("for over a month", 1), ("on and off for two months", 1)]
LEVELS = ["self-care at home", "ask a pharmacist", "see a doctor", "call emergency services"]
TRIAGE_Q = ["I have had {s} {d}. What should I do?", "What should I do about {s}? It started {ago}.",
            "{S} {d}, and now also {s2}. Where should I go?", "Since {ago} I have {s}. Is that serious?"]


def wellness_examples(rng):
    """Yields (group key, example) forever: a symptom description -> one of four triage levels.

    The level is the highest of the symptoms' levels; when the symptoms have lasted weeks, self-care becomes
    "ask a pharmacist" and a pharmacist's matter "see a doctor". Doctor and emergency levels stay."""
    while True:
        form = rng.randrange(len(TRIAGE_Q))
        level = rng.choice(sorted(SYMPTOMS))
        s = rng.choice(SYMPTOMS[level])
        d, longer = rng.choice(DURATIONS)
        s2 = ""
        if form == 2:
            level2 = rng.choice(sorted(SYMPTOMS))
            s2 = rng.choice(SYMPTOMS[level2])
            if s2 == s:
                continue
            level = max(level, level2)
        if longer and level < 2:
            level += 1
        # "for two days" -> "two days ago", "since yesterday" -> "yesterday": for "It started ..." / "Since ..."
        ago = d.replace("since ", "").replace("for ", "") + (" ago" if d.startswith("for ") else "")
        if form in (1, 3) and d.startswith("on and off"):
            continue
        q = TRIAGE_Q[form].format(s=s, S=s[0].upper() + s[1:], d=d, ago=ago, s2=s2)
        yield f"{s}|{s2}|{d}", {"messages": [{"role": "user", "content": q},
                                             {"role": "assistant", "content": LEVELS[level]}],
                               "level": LEVELS[level]}


# --- splits --------------------------------------------------------------------------------------------------

def make_splits(gen, sizes, seed, name):
    """Fills train/val/test from `gen`, assigning each group key to one split by its hash."""
    total = sum(sizes.values())
    bounds = []
    acc = 0
    for split, n in sizes.items():
        acc += n
        bounds.append((acc / total, split))
    out = {s: [] for s in sizes}
    seen = set()
    group_split = {}
    tries = 0
    while any(len(out[s]) < sizes[s] for s in sizes):
        tries += 1
        if tries > 200 * total + 10000:
            sys.exit(f"error: {name}: could not find enough distinct examples for {sizes}")
        key, ex = next(gen)
        text = json.dumps(ex, sort_keys=True)
        if text in seen:
            continue
        split = group_split.get(key)
        if split is None:
            h = int.from_bytes(hashlib.sha1(f"{seed}:{name}:{key}".encode()).digest()[:8], "big") / 2.0 ** 64
            split = next(s for b, s in bounds if h < b)
            group_split[key] = split
        if len(out[split]) >= sizes[split]:
            continue
        seen.add(text)
        out[split].append(ex)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--val", type=int, default=200)
    ap.add_argument("--test", type=int, default=200)
    a = ap.parse_args(argv)
    if min(a.train, a.val, a.test) < 1:
        sys.exit("error: --train, --val and --test must be at least 1")
    os.makedirs(a.out_dir, exist_ok=True)
    sizes = {"train": a.train, "val": a.val, "test": a.test}
    for name, gen in (("bug-finder", bug_finder_examples(random.Random(f"{a.seed}:bugs"))),
                      ("wellness", wellness_examples(random.Random(f"{a.seed}:wellness")))):
        splits = make_splits(gen, sizes, a.seed, name)
        for split, examples in splits.items():
            path = os.path.join(a.out_dir, f"{name}-{split}.jsonl")
            with open(path, "w", encoding="utf-8") as f:
                for ex in examples:
                    f.write(json.dumps(ex, ensure_ascii=False) + "\n")
        print(f"{name}: " + ", ".join(f"{s} {len(e)}" for s, e in splits.items()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
