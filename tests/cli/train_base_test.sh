#!/usr/bin/env bash
# scripts/train_base.sh end to end on a tiny corpus and model: an interrupted first phase resumes, --decay-at
# stops the cosine schedule there and anneals (a second run from those weights), and a finished run says so.
# usage: train_base_test.sh REPO_DIR BUILD_DIR WORK_DIR
set -euo pipefail
repo=$1 build=$2 work=$3
rm -rf "$work" && mkdir -p "$work/corpus"
fail() { echo "FAIL: $*" >&2; exit 1; }
/usr/bin/python3 - "$work/corpus" <<'PYEOF'
import json, random, sys
rng = random.Random(1)
words = "the a function returns value list table query index file name path option error".split()
for split, n in (("train", 60), ("val", 4)):
    with open(f"{sys.argv[1]}/{split}.jsonl", "w") as f:
        for i in range(n):
            text = "\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(6))
            f.write(json.dumps({"text": text, "source": "test", "path": f"{split}/{i}"}) + "\n")
PYEOF
run() {
  bash "$repo/scripts/train_base.sh" --corpus "$work/corpus" --vocab "$repo/models/pocketlm-base/tokenizer.gguf" \
    --out "$work/run" --bin-dir "$build" --layers 1 --embd 32 --heads 2 --kv-heads 1 --ff 64 --ctx 32 \
    --batch-tokens 64 --steps 6 --save-every 1 --eval-every 100 --val-limit-chunks 4 "$@" >>"$work/log" 2>&1
}
# 1. interrupted after 2 of the 6 planned steps
run --stop-after 2 || fail "first run: $(tail -n 5 "$work/log")"
[[ -s "$work/run/stopped.gguf" && ! -e "$work/run/base-f32.gguf" ]] || fail "no stopped.gguf after --stop-after"
# 2. resumed, stopped at step 4 by --decay-at, then a 3-step cool-down
run --decay-at 4 --decay-steps 3 || fail "decay run: $(tail -n 5 "$work/log")"
grep -q "resuming from $work/run/checkpoint.gguf" "$work/log" || fail "the decay run did not resume phase 1"
grep -Eq "cool-down: step 4 of 6, learning rate [0-9.e-]+ -> 0 over 3 steps" "$work/log" || fail "no cool-down line"
grep -q -- "--schedule linear --warmup 10 --steps 3" "$work/log" || fail "cool-down run not as documented"
[[ -s "$work/run/phase1.gguf" && -s "$work/run/base-f32.gguf" ]] || fail "phase1.gguf or base-f32.gguf missing"
"$build/tools/cli/pocketlm" info "$work/run/checkpoint.gguf" | grep -Eq "checkpoint\.step +u64 +4$" ||
  fail "phase 1 did not stop at step 4"
"$build/tools/cli/pocketlm" info "$work/run/decay-checkpoint.gguf" | grep -Eq "checkpoint\.step +u64 +3$" ||
  fail "the cool-down did not run 3 steps"
# the learning rate handed to the cool-down is the cosine schedule's at step 4 of 6 (warmup 6 * 3 / 100 = 0)
lr=$(sed -n 's/^cool-down: .*learning rate \([0-9.e-]*\) .*/\1/p' "$work/log")
/usr/bin/python3 -c "import math, sys; want = 2e-3 * 0.5 * (1 + math.cos(math.pi * 4 / 6)); \
  sys.exit(0 if abs(float(sys.argv[1]) - want) < 1e-8 else 'lr %s, want %g' % (sys.argv[1], want))" "$lr"
[[ $(grep -c "resuming from" "$work/log") -eq 1 ]] || fail "phase 1 was resumed again after it finished"
# 3. done: a third run changes nothing
run --decay-at 4 --decay-steps 3 || fail "third run failed"
tail -n 1 "$work/log" | grep -q "training is done" || fail "a finished run trained again"
echo "train_base_test: ok"
