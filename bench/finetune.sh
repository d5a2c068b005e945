#!/usr/bin/env bash
# Fine-tuning benchmark (issue "LoRA and QLoRA fine-tuning on the CPU"): rank-16 LoRA on all linear layers of the
# qwen2-0.5b-shaped random model, sequence length 256, on an F16 base and a Q4_0 base. Reports training tokens/s
# (median of REPS runs of STEPS steps, one 256-token sequence per step), peak RSS, and pocketlm's own prefill
# tokens/s on the same model measured in the same run (target: training >= 40% of prefill; peak RSS <= base
# weights + 1 GiB). Writes bench/FINETUNE_RESULTS.md (the whole file: command, date, commit, CPU, table). Needs
# ../shared (developer checkouts, CI).
#   bench/finetune.sh [--types "f16 q4_0"] [--reps N] [--steps N] [--threads N]
set -euo pipefail
cd "$(dirname "$0")/.."
command="bench/finetune.sh${*:+ $*}"  # recorded in the report as given
types="f16 q4_0"
reps=3
steps=3
threads=2
while [[ $# -gt 0 ]]; do
  case "$1" in
    --types) types="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    *) echo "usage: $0 [--types LIST] [--reps N] [--steps N] [--threads N]" >&2; exit 2 ;;
  esac
done
source bench/lib.sh
bench_setup build/release
commit=$(bench_commit)  # what bench_setup just built
cpu=$(bench_cpu)

# Plain-text training data long enough that every sequence is full (packing), so tokens/s counts real tokens.
data=$work/finetune-bench.jsonl
/usr/bin/python3 - "$data" <<'PY'
import json, random, sys
random.seed(0)
words = ("the small model learns a job on the device and runs offline private fast memory bandwidth adapter "
         "quantized weights tokens layer gradient loss step").split()
with open(sys.argv[1], "w") as f:
    for _ in range(64):
        f.write(json.dumps({"text": " ".join(random.choice(words) for _ in range(400))}) + "\n")
PY

rows=()
for t in $types; do
  model=$(bench_model $t $threads)
  prefill=$($bin bench -m $model -t $threads -p 256 -n 1 -r $reps --json)
  runs=()
  for ((r = 0; r < reps; r++)); do
    line=$($bin finetune -m $model --data $data -o $work/bench-adapter.gguf --rank 16 --targets all-linear \
      --seq-len 256 --batch-tokens 256 --steps $steps -t $threads -q 2>&1 | grep '^done:')
    echo "$t run $((r + 1)): $line"
    runs+=("$(sed -E 's/.* ([0-9.]+) tokens\/s.*peak memory ([0-9]+) MiB.*/\1 \2/' <<<"$line")")
  done
  rows+=("$t|$(stat -c %s $model)|$prefill|${runs[*]}")
done

/usr/bin/python3 - "$threads" "$reps" "$steps" "$command" "$commit" "$cpu" "${rows[@]}" <<'PY'
import json, statistics, sys, datetime
threads, reps, steps, command, commit, cpu = sys.argv[1:7]
lines = ["# Fine-tuning benchmark (bench/finetune.sh)", "",
         "<!-- Written whole by bench/finetune.sh: edits here are lost on the next run. -->", "",
         f"Command: `{command}`: rank-16 LoRA on all linear layers (q, k, v, o, gate, up, down) of the "
         "qwen2-0.5b-shaped random model, sequence length 256, one sequence per step, "
         f"{threads} threads.", "",
         f"Measured {datetime.date.today()} at commit {commit} on {cpu}; medians of {reps} runs of {steps} steps; "
         "prefill measured in the same run with `pocketlm bench -p 256`.", "",
         "| base | file MiB | prefill tok/s | training tok/s | training / prefill (target >= 40%) | peak RSS MiB | "
         "RSS - file (target <= 1024) |",
         "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
for row in sys.argv[7:]:
    t, size, prefill, runs = row.split('|')
    size_mib = int(size) / 2**20
    pre = json.loads(prefill)['prefill_tps']
    parts = runs.split()
    tps = statistics.median(float(parts[i]) for i in range(0, len(parts), 2))
    rss = max(float(parts[i]) for i in range(1, len(parts), 2))
    lines.append(f"| {t} | {size_mib:.0f} | {pre:.1f} | {tps:.1f} | {100 * tps / pre:.0f}% | {rss:.0f} | "
                 f"{rss - size_mib:.0f} |")
lines += ["", "Training tok/s: tokens of training data per second over the training loop (forward, backward, "
          "AdamW; loading excluded), median of the runs; training / prefill: that over pocketlm's own prefill of "
          "the same model measured in this run, so machine load affects both alike. Peak RSS: the largest of the "
          "runs' maximum resident memory; RSS - file: what training adds on top of the mapped base weights.",
          "", "Reference point (issue text, same shape, 2 threads): PyTorch 1.13 eager CPU, F32 base, rank-16 LoRA on "
          "all linear layers: 27.9 tokens/s, 4.9 GiB peak RSS."]
open('bench/FINETUNE_RESULTS.md', 'w').write('\n'.join(lines) + '\n')
print('\n'.join(lines))
PY
