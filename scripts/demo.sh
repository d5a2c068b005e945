#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, then runs the whole pocketlm story on pocketlm's
# own base model (models/pocketlm-base, 8M parameters), offline: a few words from the base, then
# scripts/demo_domains.sh - two domain datasets, one LoRA adapter fine-tuned per domain, the base quantized to
# 4 bits, an exact-match table (base alone, each adapter on the F32 and on the 4-bit base), and one server
# answering through both adapters. About 6.5 minutes on 2 cores from a fresh machine; outputs land in build/demo.
#   scripts/demo.sh [--quick]   --quick: the smoke run CI makes (4 training steps, 8 test examples: its
#                               figures mean nothing)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=()
case "${1:-}" in
  "") ;;
  --quick) quick=(--quick) ;;
  *) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
# Only what the demo runs: the build packages (no test frameworks) and the `pocketlm` target; the whole log of
# each step is kept and shown when it fails, the build's progress is one line.
bash scripts/install-deps.sh --build
mkdir -p build
log=build/demo-build.log
cmake --preset release >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
if ! cmake --build --preset release --target pocketlm -j "$(nproc)" 2>&1 | tee -a "$log" |
  while IFS= read -r line; do
    [[ $line =~ ^\[([0-9]+)/([0-9]+)\] ]] && printf '\rbuilding pocketlm: %s/%s steps' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
    true
  done; then
  echo; tail -n 40 "$log" >&2
  echo "error: the build failed (whole log: $log)" >&2
  exit 1
fi
echo
bin=build/release/tools/cli/pocketlm
model=models/pocketlm-base/pocketlm-base-f16.gguf
[[ -s "$model" ]] || { echo "error: $model is missing: is this a complete clone?" >&2; exit 1; }

echo; echo "== the base model: $model (model card: models/pocketlm-base/README.md)"
"$bin" info -m "$model" | sed -n '1,2p'
echo "a sampled continuation of \"A function that returns\" (temperature 0.8, seed 1):"
"$bin" run -m "$model" -p "A function that returns" -n 32 --temp 0.8 --seed 1 2>/dev/null
echo
echo
bash scripts/demo_domains.sh --base "$model" --out build/demo "${quick[@]}"
