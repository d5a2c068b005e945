"""Generates pocketlm's two domain datasets, whose answers can be checked exactly (stdlib only, deterministic).

Why: the demo fine-tunes one LoRA adapter per domain on pocketlm's tiny base model and measures exact-match
accuracy on a test split, so each answer must be unique and computable. Both datasets are chat-format JSONL
({"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}, plus "bug" or "family": the kind of problem,
for per-kind accuracy; pocketlm ignores other fields), short enough for a 256-token context:

  code-fixer: a short Python or C snippet, whose first line states what it is meant to do, with exactly one
    injected bug (missing colon or semicolon, unbalanced parenthesis, wrong comparison operator, off-by-one
    range or loop bound, misspelled keyword, assignment instead of comparison) -> the corrected snippet.
  units: "How many grams is 3.5 kilograms?" -> "3500 g". Mass, length, volume, time, speed, area and
    temperature; answers are exact (decimal arithmetic with fractions), written as NUMBER SYMBOL with no
    thousands separator, no trailing zeros and at most 4 decimals.

Splits never share a problem: every variant of one correct snippet, and every phrasing of one conversion, lands
in the same split (chosen by a hash of the snippet / conversion), and examples are unique within a split.

usage: make_datasets.py OUT_DIR [--seed S] [--train N] [--val N] [--test N]
writes OUT_DIR/{code-fixer,units}-{train,val,test}.jsonl
"""

import argparse
import hashlib
import json
import os
import random
import re
import sys
from fractions import Fraction

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


def code_fixer_examples(rng):
    """Yields (group key, example) forever."""
    while True:
        lang = rng.choice(["py", "py", "c"])
        template = rng.choice(PY_TEMPLATES if lang == "py" else C_TEMPLATES)
        comment, code = fill(template, rng)
        snippet = comment + "\n" + code
        bug = inject_bug(code, lang, rng)
        if bug is None:
            continue
        broken, kind = bug
        if broken == code:
            continue
        language = "Python" if lang == "py" else "C"
        prompt = f"Fix the bug in this {language} code:\n{comment}\n{broken}"
        yield snippet, {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": snippet}],
                        "bug": kind}


# --- units ---------------------------------------------------------------------------------------------------

# family -> [(symbol, singular, plural, size in the family's base unit)]
UNITS = {
    "mass": [("mg", "milligram", "milligrams", Fraction(1, 1000)), ("g", "gram", "grams", Fraction(1)),
             ("kg", "kilogram", "kilograms", Fraction(1000)), ("t", "tonne", "tonnes", Fraction(1000000))],
    "length": [("mm", "millimetre", "millimetres", Fraction(1, 1000)), ("cm", "centimetre", "centimetres",
               Fraction(1, 100)), ("m", "metre", "metres", Fraction(1)), ("km", "kilometre", "kilometres",
               Fraction(1000))],
    "volume": [("ml", "millilitre", "millilitres", Fraction(1, 1000)), ("l", "litre", "litres", Fraction(1))],
    "time": [("s", "second", "seconds", Fraction(1)), ("min", "minute", "minutes", Fraction(60)),
             ("h", "hour", "hours", Fraction(3600)), ("d", "day", "days", Fraction(86400))],
    "speed": [("m/s", "metre per second", "metres per second", Fraction(1)),
              ("km/h", "kilometre per hour", "kilometres per hour", Fraction(5, 18))],
    "area": [("cm2", "square centimetre", "square centimetres", Fraction(1, 10000)),
             ("m2", "square metre", "square metres", Fraction(1)), ("ha", "hectare", "hectares", Fraction(10000))],
}
QUESTIONS = ["How many {to_pl} is {v} {from_name}?", "Convert {v} {from_sym} to {to_sym}.",
             "What is {v} {from_name} in {to_pl}?", "{v} {from_sym} = ? {to_sym}"]


def fmt(x):
    """Exact decimal with at most 4 places, no trailing zeros; None if x needs more."""
    scaled = x * 10000
    if scaled.denominator != 1:
        return None
    n = scaled.numerator
    sign = "-" if n < 0 else ""
    n = abs(n)
    whole, frac = divmod(n, 10000)
    s = f"{whole}.{frac:04d}".rstrip("0").rstrip(".")
    return sign + s


def random_value(rng):
    kind = rng.random()
    if kind < 0.5:
        return Fraction(rng.randint(1, 999))
    if kind < 0.8:
        return Fraction(rng.randint(1, 999), 10)
    return Fraction(rng.randint(1, 9999), 100)


def units_examples(rng):
    while True:
        if rng.random() < 0.15:  # temperature: offsets, not factors
            if rng.random() < 0.5:
                c = Fraction(rng.randint(-40, 200))
                f = c * Fraction(9, 5) + 32
                v, fu, tu, ans = c, ("°C", "degree Celsius", "degrees Celsius"), \
                    ("°F", "degree Fahrenheit", "degrees Fahrenheit"), f
            else:
                c = Fraction(rng.randint(-40, 200))
                f = c * Fraction(9, 5) + 32
                if f.denominator != 1:
                    continue
                v, fu, tu, ans = f, ("°F", "degree Fahrenheit", "degrees Fahrenheit"), \
                    ("°C", "degree Celsius", "degrees Celsius"), c
        else:
            family = rng.choice(sorted(UNITS))
            a, b = rng.sample(UNITS[family], 2)
            v = random_value(rng)
            ans = v * a[3] / b[3]
            fu, tu = a[:3], b[:3]
        vs, ans_s = fmt(v), fmt(ans)
        if vs is None or ans_s is None or ans == 0:
            continue
        from_name = fu[1] if v == 1 else fu[2]
        q = rng.choice(QUESTIONS).format(v=vs, from_name=from_name, from_sym=fu[0], to_sym=tu[0], to_pl=tu[2])
        key = f"{vs} {fu[0]} -> {tu[0]}"
        family = next((f for f, units in UNITS.items() if any(u[0] == fu[0] for u in units)), "temperature")
        yield key, {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": f"{ans_s} {tu[0]}"}],
                    "family": family}


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
    for name, gen in (("code-fixer", code_fixer_examples(random.Random(f"{a.seed}:code"))),
                      ("units", units_examples(random.Random(f"{a.seed}:units")))):
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
