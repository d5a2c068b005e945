#!/usr/bin/env bash
# Decode speed with an adapter applied (issue 5, benchmark 1): `pocketlm bench` on the qwen2-0.5b-shaped base,
# bare and with one random rank-16 adapter on every linear projection (7 per layer x 24 layers = 168 pairs, made
# with ../shared/tools/mklora.py), for each base type. Prints decode tok/s both ways and the loss in percent
# (target: <= 10%), each the median of --reps runs. Run it on a quiet machine. Needs ../shared.
#   bench/adapter_decode.sh [--build DIR] [--reps N] [--types "q4_0 q4_k_m"]
set -euo pipefail
cd "$(dirname "$0")/.."
build=build/release
reps=5
types="q4_0 q4_k_m"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --types) types="$2"; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--reps N] [--types \"q4_0 q4_k_m\"]" >&2; exit 2 ;;
  esac
done
source bench/lib.sh
bench_setup "$build"
mkdir -p $work/adapter-decode
targets=attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down

decode_tps() {  # decode_tps ARGS...: the median decode tok/s of `pocketlm bench`
  "$bin" bench "$@" -t 2 -p 32 -n 64 -r "$reps" --json | sed -E 's/.*"decode_tps": *([0-9.]+).*/\1/'
}

printf '%-8s %12s %14s %8s\n' base "bare tok/s" "rank-16 tok/s" loss
for type in $types; do
  base=$(bench_model "$type" 2)
  lora=$work/adapter-decode/r16-all-linear-$type.gguf
  [[ -f $lora ]] || /usr/bin/python3 $shared/tools/mklora.py "$base" "$lora" 16 16 $targets --seed 1 >/dev/null
  bare=$(decode_tps -m "$base")
  with=$(decode_tps -m "$base" --lora "$lora")
  loss=$(awk -v b="$bare" -v w="$with" 'BEGIN { printf "%.1f%%", 100 * (b - w) / b }')
  printf '%-8s %12s %14s %8s\n' "$type" "$bare" "$with" "$loss"
done
