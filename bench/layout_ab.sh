#!/usr/bin/env bash
# Interleaved weights (the default on AVX-512: tensor/quant/interleave.h) against the file's row layout
# (`--gguf-layout`), same binary, same model, runs alternating so that machine noise hits both alike. Prints the
# median prefill (256 tokens) and decode (64 tokens) tokens/s of ROUNDS single runs each, 2 threads, after a line
# saying when, at which commit and on which CPU, and before one with the read bandwidth before and after the runs.
#   bench/layout_ab.sh [--types "q4_0 q4_k_m q8_0"] [--rounds N] [--build-dir DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
command="bench/layout_ab.sh${*:+ $*}"
types="q4_0 q4_k_m q8_0"
rounds=7
build=build/release
while [[ $# -gt 0 ]]; do
  case "$1" in
    --types) types="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --build-dir) build="$2"; shift 2 ;;
    *) echo "usage: $0 [--types LIST] [--rounds N] [--build-dir DIR]" >&2; exit 2 ;;
  esac
done
source bench/lib.sh
bench_setup "$build"
echo "$command: $(bench_stamp "2 threads")"
bw_before=$(bench_readbw 2)

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
echo "| type | layout | prefill 256 tok/s | decode tok/s |"
echo "| --- | --- | ---: | ---: |"
for t in $types; do
  model=$(bench_model $t 2)
  declare -a pre_i=() dec_i=() pre_g=() dec_g=()
  for ((r = 0; r < rounds; r++)); do
    for layout in interleaved gguf; do
      args=()
      [[ $layout == gguf ]] && args=(--gguf-layout)
      json=$($bin bench -m $model -t 2 -p 256 -n 64 -r 1 --json "${args[@]}")
      p=$(echo "$json" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["prefill_tps"])')
      d=$(echo "$json" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["decode_tps"])')
      if [[ $layout == gguf ]]; then pre_g+=("$p"); dec_g+=("$d"); else pre_i+=("$p"); dec_i+=("$d"); fi
    done
  done
  printf '| %s | interleaved | %.1f | %.1f |\n' $t "$(median "${pre_i[@]}")" "$(median "${dec_i[@]}")"
  printf '| %s | --gguf-layout | %.1f | %.1f |\n' $t "$(median "${pre_g[@]}")" "$(median "${dec_g[@]}")"
done
echo "read bandwidth, 2 threads: $bw_before GB/s before, $(bench_readbw 2) GB/s after"
