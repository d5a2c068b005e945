#!/usr/bin/env python3
"""Fails when a library in src/ includes a header of a library it does not depend on.

The libraries, their sources and their dependencies come from src/**/CMakeLists.txt (add_library and
target_link_libraries), so the layering has one source of truth: the build. A header belongs to the library that
compiles the sources of its folder. A file of library A may include a header of library B only when B is A or one of
A's dependencies, directly or not; an upward include (ops including model/, say) is reported with both libraries.

usage: scripts/check-layering.py [REPO_ROOT]
"""
import os
import re
import sys

root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
src = os.path.join(root, "src")

# Sources are listed either by plain name or by a path relative to the CMakeLists.txt folder.
CALL = re.compile(r"\b(add_library|target_link_libraries)\s*\(([^)]*)\)", re.S)
KEYWORDS = {"STATIC", "SHARED", "INTERFACE", "OBJECT", "PUBLIC", "PRIVATE"}

lib_of_dir = {}  # folder relative to src -> library
deps = {}  # library -> direct plm_* dependencies
for dirpath, _, files in os.walk(src):
    if "CMakeLists.txt" not in files:
        continue
    text = open(os.path.join(dirpath, "CMakeLists.txt"), encoding="utf-8").read()
    text = re.sub(r"#[^\n]*", "", text)
    variables = {m.group(1): m.group(2) for m in re.finditer(r"\bset\s*\(\s*(\w+)\s+([^)]*)\)", text)}
    text = re.sub(r"\$\{(\w+)\}", lambda m: variables.get(m.group(1), m.group(0)), text)
    here = os.path.relpath(dirpath, src)
    for kind, body in CALL.findall(text):
        words = [w for w in body.split() if w not in KEYWORDS]
        if not words:
            continue
        name, rest = words[0], words[1:]
        deps.setdefault(name, set())
        if kind == "add_library":
            lib_of_dir.setdefault(here, name)  # headers beside the CMakeLists.txt belong to its first library
            for s in rest:
                if s.endswith((".cpp", ".c")) and "$" not in s:
                    folder = os.path.relpath(os.path.dirname(os.path.join(dirpath, s)), src)
                    owner = lib_of_dir.setdefault(folder, name)
                    if owner != name and not name.startswith("pocketlm_"):  # pocketlm_c: plm_capi's sources again
                        sys.exit(f"check-layering: src/{folder} holds sources of {owner} and {name}: one library per folder")
        else:
            deps[name] |= {w for w in rest if w.startswith("plm_")}

closure = {}


def below(lib, seen=()):
    if lib not in closure:
        out = set(deps.get(lib, ()))
        for d in list(out):
            if d in seen:
                sys.exit(f"check-layering: dependency cycle through {lib} and {d}")
            out |= below(d, seen + (lib,))
        closure[lib] = out
    return closure[lib]


def owner(path_in_src):
    folder = os.path.dirname(path_in_src)
    while True:
        if folder in lib_of_dir:
            return lib_of_dir[folder]
        if not folder:
            return None
        folder = os.path.dirname(folder)


INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
errors = []
n_files = 0
for dirpath, _, files in os.walk(src):
    for f in sorted(files):
        if not f.endswith((".cpp", ".c", ".h")):
            continue
        path = os.path.relpath(os.path.join(dirpath, f), src)
        lib = owner(path)
        if lib is None:
            continue
        n_files += 1
        for inc in INCLUDE.findall(open(os.path.join(src, path), encoding="utf-8").read()):
            target = inc if os.path.exists(os.path.join(src, inc)) else os.path.normpath(
                os.path.join(os.path.dirname(path), inc))
            if not os.path.exists(os.path.join(src, target)):
                continue  # a system or generated header
            other = owner(target)
            if other is not None and other != lib and other not in below(lib):
                errors.append(f"src/{path} includes {inc} ({other}), but {lib} does not depend on {other}: a lower "
                              f"layer must not include a higher one (move the code, or add the dependency in CMake if "
                              f"it is not upward)")

for e in errors:
    print("check-layering: " + e, file=sys.stderr)
if errors:
    sys.exit(1)
print(f"layering ok ({n_files} files in {len(set(lib_of_dir.values()))} libraries)")
