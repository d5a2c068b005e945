#!/usr/bin/env bash
# Fails when a C/C++ source differs from .clang-format's layout; `--fix` rewrites the files instead.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.h' '*.cpp' '*.c' | grep -v '^src/tokenizer/unicode_tables.cpp$')
if [[ "${1:-}" == "--fix" ]]; then
  clang-format -i "${files[@]}"
else
  clang-format --dry-run --Werror "${files[@]}"
  echo "format ok (${#files[@]} files)"
fi
