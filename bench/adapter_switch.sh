#!/usr/bin/env bash
# Adapter switch time (issue 5, benchmark 2): one plm_session (C API) on the qwen2-0.5b-shaped base alternates
# between adapter sets (A, B, A+B at 0.5 each, none); each plm_session_set_adapters call is timed. A and B are
# random rank-16 adapters on every linear projection (7 per layer x 24 layers = 168 pairs each), made with
# ../shared/tools/mklora.py. Prints when, at which commit and on which CPU, then median, p99 and max in
# microseconds (target: < 100 us). Needs ../shared.
#   bench/adapter_switch.sh [--build DIR] [--base q4_0|q4_k_m|q8_0|f16] [--switches N]
set -euo pipefail
cd "$(dirname "$0")/.."
command="bench/adapter_switch.sh${*:+ $*}"
build=build/release
base_type=q4_0
switches=20000
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --base) base_type="$2"; shift 2 ;;
    --switches) switches="$2"; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--base TYPE] [--switches N]" >&2; exit 2 ;;
  esac
done
source bench/lib.sh
bench_setup "$build"
cmake --build "$build" --target capi_adapter_switch_bench -j 2 >/dev/null
bench_bin=$build/tests/capi/capi_adapter_switch_bench
echo "$command: $(bench_stamp "switches timed on the calling thread")"
mkdir -p $work/adapter-switch
base=$(bench_model "$base_type" 2)
targets=attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down
for s in 1 2; do
  lora=$work/adapter-switch/r16-all-linear-$s.gguf
  [[ -f $lora ]] || /usr/bin/python3 $shared/tools/mklora.py "$base" "$lora" 16 16 $targets --seed $s >/dev/null
done

json=$("$bench_bin" "$base" $work/adapter-switch/r16-all-linear-1.gguf $work/adapter-switch/r16-all-linear-2.gguf \
  "$switches")
echo "adapter switch, qwen2-0.5b shape ($base_type base), rank-16 all-linear adapters: $json"
