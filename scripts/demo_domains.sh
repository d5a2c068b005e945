#!/usr/bin/env bash
# The whole pocketlm story on one small base model, every figure measured on the spot:
#   1. two chat datasets with exactly checkable answers (scripts/datasets: a bug finder and a wellness triage),
#   2. one LoRA adapter fine-tuned per domain on the F32 base,
#   3. the base quantized to 4 bits (q4_k_m),
#   4. exact match on each test split: the base alone, each adapter on the F32 base and on the 4-bit base (one table),
#   5. `pocketlm serve` with both adapters over the 4-bit base, one question to each through the OpenAI-style API.
# usage: scripts/demo_domains.sh --base BASE.gguf [--out DIR] [--bin-dir DIR] [--quick]
#   --base     the base model (F32/F16/BF16 GGUF with a chat template, e.g. pocketlm's own base model)
#   --out      working directory (default build/demo-domains); adapters, models and the table land there
#   --bin-dir  a release build (default build/release)
#   --quick    a smoke run (CI): 4 training steps per adapter and 8 test examples per split; its figures mean nothing
set -euo pipefail
cd "$(dirname "$0")/.."
base="" out=build/demo-domains bin_dir=build/release quick=0
while (($#)); do
  case "$1" in
    --base) base=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
[[ -n "$base" && -s "$base" ]] || { echo "error: --base BASE.gguf is required and must exist" >&2; exit 2; }
pocketlm=$bin_dir/tools/cli/pocketlm
[[ -x "$pocketlm" ]] || { echo "error: $pocketlm not found: build first (cmake --build --preset release)" >&2; exit 1; }
mkdir -p "$out"
py=/usr/bin/python3

# Training and evaluation budgets: replies are a few words (<= 8 tokens); wellness prompts fit 64 tokens with the
# chat template, bug-finder snippets 128.
if ((quick)); then
  train_wellness=(--steps 4 --lr 2e-3) train_bugs=(--steps 4 --lr 2e-3) limit=8
else
  # measured on pocketlm-base: wellness 70% after 1 epoch at 2e-3, 98% after 2 at 3e-3; bug-finder 87.5% / 85.5%
  # after 1 epoch at 2e-3 / 3e-3
  train_wellness=(--epochs 2 --lr 3e-3) train_bugs=(--epochs 1 --lr 2e-3) limit=200
fi

echo "== 1. datasets (scripts/datasets/make_datasets.py)"
"$py" scripts/datasets/make_datasets.py "$out/data" --seed 1

echo; echo "== 2. one LoRA adapter per domain on the F32 base"
"$pocketlm" quantize "$base" "$out/base-f32.gguf" --type f32 2>&1 | tail -n 1
# The two adapters train at once, half the cores each: on 2 cores one thread runs a step at 0.7 of two threads' speed
# (1570 vs 2228 tokens/s on this model), so two one-thread runs side by side finish sooner than two two-thread runs
# in turn. Training gives the same adapter at any thread count.
threads=$(($(nproc) / 2))
((threads >= 1)) || threads=1
finetune() {  # finetune NAME SEQ_LEN BUDGET...
  local name=$1 seq=$2
  shift 2
  "$pocketlm" finetune -m "$out/base-f32.gguf" --data "$out/data/$name-train.jsonl" --val "$out/data/$name-val.jsonl" \
    -o "$out/$name.gguf" --rank 16 --seq-len "$seq" --batch-tokens 1024 --adapter-type f16 -t "$threads" "$@"
}
echo "(wellness trains in the background, its output in $out/finetune-wellness.log; bug-finder's is below)"
finetune wellness 64 "${train_wellness[@]}" >"$out/finetune-wellness.log" 2>&1 &
wellness_pid=$!
trap 'kill "$wellness_pid" 2>/dev/null || true' EXIT
finetune bug-finder 128 "${train_bugs[@]}"
wait "$wellness_pid" || { cat "$out/finetune-wellness.log" >&2; echo "error: the wellness adapter failed" >&2; exit 1; }
echo "wellness: $(grep -E '^done:' "$out/finetune-wellness.log")"

echo; echo "== 3. the base quantized to 4 bits"
"$pocketlm" quantize "$out/base-f32.gguf" "$out/base-q4_k_m.gguf" --type q4_k_m 2>&1 | tail -n 1

echo; echo "== 4. exact match on the test splits (greedy, first $limit examples)"
exact() {  # exact MODEL DOMAIN [ADAPTER]: prints "hits/n pct%"; fails when eval prints no summary
  local args=(-m "$1" --exact-match "$out/data/$2-test.jsonl" --limit "$limit" --max-tokens 16) summary
  [[ -n "${3:-}" ]] && args+=(--lora "$3")
  summary=$("$pocketlm" eval "${args[@]}" 2>>"$out/eval.log" | sed -n 's/^exact match \([0-9]*\/[0-9]*\) = \([0-9.]*%\).*/\1 \2/p')
  [[ -n "$summary" ]] || { echo "error: pocketlm eval ${args[*]} gave no exact-match summary" >&2; return 1; }
  echo "$summary"
}
table=$out/table.md
rows=()
for d in wellness bug-finder; do
  # what always replying with the training split's most common answer would score: the bar an adapter must
  # clear to have learned more than the answer format
  prior=$("$py" - "$out/data/$d-train.jsonl" "$out/data/$d-test.jsonl" "$limit" <<'EOF'
import collections, json, sys
reply = lambda line: json.loads(line)["messages"][-1]["content"].strip()
common = collections.Counter(reply(l) for l in open(sys.argv[1])).most_common(1)[0][0]
test = [reply(l) for l in open(sys.argv[2])][: int(sys.argv[3])]
hits = sum(t == common for t in test)
print(f"{hits}/{len(test)} {100 * hits / len(test):.1f}%")
EOF
)
  alone=$(exact "$out/base-f32.gguf" $d)
  f32=$(exact "$out/base-f32.gguf" $d "$out/$d.gguf")
  q4=$(exact "$out/base-q4_k_m.gguf" $d "$out/$d.gguf")
  rows+=("| $d | $prior | $alone | $f32 | $q4 |")
done
{
  echo "| test split | most common answer | base alone (F32) | + adapter, F32 base | + adapter, 4-bit base |"
  echo "| --- | --- | --- | --- | --- |"
  printf '%s\n' "${rows[@]}"
} >"$table"
cat "$table"
echo "($(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'))"

echo; echo "== 5. one server, two adapters over the 4-bit base; one answer from each"
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$pocketlm" serve -m "$out/base-q4_k_m.gguf" --lora "wellness=$out/wellness.gguf" --lora "bug-finder=$out/bug-finder.gguf" \
  --port "$port" >"$out/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
"$py" - "$port" "$out/data" <<'EOF'
import json, sys, time, urllib.request
port, data = sys.argv[1], sys.argv[2]
url = f"http://127.0.0.1:{port}"
for _ in range(100):  # the server loads the model first
    try:
        urllib.request.urlopen(url + "/health", timeout=1)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("error: the server did not come up (see serve.log)")
for name in ["wellness", "bug-finder"]:
    with open(f"{data}/{name}-test.jsonl") as f:
        example = json.loads(f.readline())
    question = example["messages"][0]["content"]
    body = {"model": name, "messages": [{"role": "user", "content": question}], "temperature": 0, "max_tokens": 32}
    req = urllib.request.Request(url + "/v1/chat/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    reply = json.load(urllib.request.urlopen(req, timeout=120))
    print(f'POST /v1/chat/completions "model": "{name}"')
    print("  question: " + question.replace("\n", "\n            "))
    print("  answer:   " + reply["choices"][0]["message"]["content"].replace("\n", "\n            "))
    print("  expected: " + example["messages"][1]["content"].replace("\n", "\n            "))
EOF
echo; echo "table: $table"
