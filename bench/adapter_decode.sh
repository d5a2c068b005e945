#!/usr/bin/env bash
# Decode speed with an adapter applied (issue 5, benchmark 1): `pocketlm bench` on the qwen2-0.5b-shaped base,
# bare and with one rank-16 adapter on every linear projection (7 per layer x 24 layers = 168 pairs), stored as
# f32 and as f16 (`pocketlm finetune --adapter-type`; one short training step makes each, so both hold the same
# kind of values). Prints decode tok/s and the loss against bare decoding in percent (target: <= 10%), each the
# median of --reps rounds; a round runs bare, f32 and f16 once each (one `pocketlm bench` run each), so a change
# in machine load during the benchmark hits all three alike. Run it on a quiet machine. The first line says when, at
# which commit and on which CPU; the last, the read bandwidth before and after the runs. Needs ../shared.
#   bench/adapter_decode.sh [--build DIR] [--reps N] [--types "q4_0 q4_k_m"]
set -euo pipefail
cd "$(dirname "$0")/.."
command="bench/adapter_decode.sh${*:+ $*}"
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
echo "$command: $(bench_stamp "2 threads")"
bw_before=$(bench_readbw 2)
dir=$work/adapter-decode
mkdir -p $dir
/usr/bin/python3 -c 'import json
for i in range(8): print(json.dumps({"text": " ".join(["the small model runs offline"] * 40)}))' >$dir/data.jsonl

decode_tps() {  # decode_tps ARGS...: decode tok/s of one `pocketlm bench` run
  "$bin" bench "$@" -t 2 -p 32 -n 64 -r 1 --json | sed -E 's/.*"decode_tps": *([0-9.]+).*/\1/'
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
loss() { awk -v b="$1" -v w="$2" 'BEGIN { printf "%.1f%%", 100 * (b - w) / b }'; }

printf '%-8s %10s %12s %7s %12s %7s\n' base "bare tok/s" "f32 adapter" loss "f16 adapter" loss
for type in $types; do
  base=$(bench_model "$type" 2)
  for st in f32 f16; do
    lora=$dir/r16-all-linear-$type-$st.gguf
    [[ -f $lora ]] || "$bin" finetune -m "$base" --data $dir/data.jsonl -o "$lora" --rank 16 --targets all-linear \
      --steps 1 --seq-len 64 --batch-tokens 64 --adapter-type $st -q 2>/dev/null
  done
  bare_runs="" w32_runs="" w16_runs=""
  for ((i = 0; i < reps; i++)); do
    bare_runs+=" $(decode_tps -m "$base")"
    w32_runs+=" $(decode_tps -m "$base" --lora $dir/r16-all-linear-$type-f32.gguf)"
    w16_runs+=" $(decode_tps -m "$base" --lora $dir/r16-all-linear-$type-f16.gguf)"
  done
  bare=$(median <<<"$bare_runs") w32=$(median <<<"$w32_runs") w16=$(median <<<"$w16_runs")
  printf '%-8s %10s %12s %7s %12s %7s\n' "$type" "$bare" "$w32" "$(loss "$bare" "$w32")" "$w16" "$(loss "$bare" "$w16")"
done
ls -l $dir/*.gguf | awk '{ printf "%s %.1f MB\n", $NF, $5 / 1e6 }'
echo "read bandwidth, 2 threads: $bw_before GB/s before, $(bench_readbw 2) GB/s after"
