#!/usr/bin/env bash
# Trains pocketlm's own small base model from scratch with `pocketlm finetune --full`, resuming automatically.
#   scripts/train_base.sh --corpus CORPUS_DIR --vocab TOKENIZER.gguf --out OUT_DIR [--spm-model tokenizer.model]
#                         [--steps N | --epochs X] [--bin-dir DIR] [--threads N] [shape / optimiser options below]
# CORPUS_DIR: train.jsonl and val.jsonl (scripts/corpus/build_corpus.sh); TOKENIZER.gguf: the vocabulary
# (scripts/corpus/train_tokenizer.sh; pass its tokenizer.model as --spm-model for exact chunk sizes).
# Writes OUT_DIR/init.gguf (the random initial model), train-chunks.jsonl / val-chunks.jsonl (documents cut to
# the sequence length), checkpoint.gguf (every --save-every steps) and, when done, base-f32.gguf and train.log.
# Run the same command again after an interruption: it resumes from OUT_DIR/checkpoint.gguf exactly where it
# stopped (the steps, schedule and data order are those of the first run, so keep the options unchanged).
#
# Defaults (a ~8M-parameter llama for a 2-core CPU; see scripts/corpus/README.md for the reasoning):
#   shape      --layers 8 --embd 256 --heads 8 --kv-heads 4 --ff 704 --ctx 256, tied embeddings, vocab 8000
#   init       N(0, 0.02^2) matrices, residual projections / sqrt(2 * layers), norms 1 (GPT-2), --seed 1
#   optimiser  AdamW, --lr 2e-3 peak, cosine after --warmup (default: finetune's 3% of the steps), --weight-decay 0.1,
#              --clip 1.0, --batch-tokens 8192 (32 sequences of 256), 1 epoch unless --steps
#   bookkeeping --save-every 100, --eval-every 500 (validation loss on --val-limit-chunks 400 chunks);
#              --stop-after N stops after N steps of this run as if interrupted (to try resuming)
#   cool-down  --decay-at STEP --decay-steps N: stop the cosine schedule at STEP and anneal instead, as in the
#              warmup-stable-decay recipe (Hagele et al. 2024, arXiv:2405.18392): a second run from the weights at
#              STEP, its learning rate falling linearly from the schedule's value at STEP to 0 over N steps (after a
#              --decay-warmup 10 step ramp: its AdamW moments start at zero), data reshuffled with seed + 1.
#              Writes OUT_DIR/phase1.gguf and decay-checkpoint.gguf; resumes like the first run.
set -euo pipefail
cd "$(dirname "$0")/.."
py=/usr/bin/python3

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
corpus="" vocab="" out="" spm_model="" bin_dir=build/release
steps="" epochs=1 threads=2 seed=1
layers=8 embd=256 heads=8 kv_heads=4 ff=704 ctx=256 init_std=0.02
stop_after="" decay_at="" decay_steps="" decay_warmup=10
lr=2e-3 warmup="" weight_decay=0.1 clip=1.0 batch_tokens=8192 save_every=100 eval_every=500 val_limit=400
while (($#)); do
  (($# >= 2)) || { echo "error: $1 needs a value" >&2; usage; }
  case "$1" in
    --corpus) corpus=$2 ;;
    --vocab) vocab=$2 ;;
    --out) out=$2 ;;
    --spm-model) spm_model=$2 ;;
    --bin-dir) bin_dir=$2 ;;
    --steps) steps=$2 ;;
    --epochs) epochs=$2 ;;
    --threads) threads=$2 ;;
    --seed) seed=$2 ;;
    --layers) layers=$2 ;;
    --embd) embd=$2 ;;
    --heads) heads=$2 ;;
    --kv-heads) kv_heads=$2 ;;
    --ff) ff=$2 ;;
    --ctx) ctx=$2 ;;
    --init-std) init_std=$2 ;;
    --lr) lr=$2 ;;
    --warmup) warmup=$2 ;;
    --weight-decay) weight_decay=$2 ;;
    --clip) clip=$2 ;;
    --batch-tokens) batch_tokens=$2 ;;
    --save-every) save_every=$2 ;;
    --eval-every) eval_every=$2 ;;
    --val-limit-chunks) val_limit=$2 ;;
    --stop-after) stop_after=$2 ;;
    --decay-at) decay_at=$2 ;;
    --decay-steps) decay_steps=$2 ;;
    --decay-warmup) decay_warmup=$2 ;;
    *) echo "error: unknown option '$1'" >&2; usage ;;
  esac
  shift 2
done
[[ -z "$decay_at" || ( "$decay_at" -gt 0 && "${decay_steps:-0}" -gt 0 ) ]] ||
  { echo "error: --decay-at STEP needs --decay-steps N (both positive)" >&2; usage; }
[[ -n "$corpus" && -n "$vocab" && -n "$out" ]] || { echo "error: --corpus, --vocab and --out are required" >&2; usage; }
for f in "$corpus/train.jsonl" "$corpus/val.jsonl" "$vocab"; do
  [[ -s "$f" ]] || { echo "error: $f is missing or empty" >&2; exit 1; }
done
pocketlm=$bin_dir/tools/cli/pocketlm
mkmodel=$bin_dir/tools/mkmodel/make_random_model
for b in "$pocketlm" "$mkmodel"; do
  [[ -x "$b" ]] || { echo "error: $b not found: build it (cmake --build --preset release) or pass --bin-dir" >&2; exit 1; }
done
mkdir -p "$out"
if [[ -s "$out/base-f32.gguf" ]]; then
  echo "$out/base-f32.gguf exists: training is done (delete it, and checkpoint.gguf, to train again)"
  exit 0
fi

# 1. The initial model: made once, so a resumed run starts from the same weights.
if [[ ! -s "$out/init.gguf" ]]; then
  "$mkmodel" "$out/init.gguf" --vocab "$vocab" --layers "$layers" --embd "$embd" --heads "$heads" \
    --kv-heads "$kv_heads" --ff "$ff" --ctx "$ctx" --init-std "$init_std" --tied --seed "$seed" \
    --name "pocketlm-base" | tee "$out/init.txt"
fi

# 2. Documents cut to the sequence length (the trainer truncates longer examples).
chunk_args=(--max-tokens "$ctx")
[[ -n "$spm_model" ]] && chunk_args+=(--spm-model "$spm_model")
for split in train val; do
  if [[ ! -s "$out/$split-chunks.jsonl" ]]; then
    "$py" scripts/corpus/chunk_corpus.py "$corpus/$split.jsonl" "$out/$split-chunks.jsonl.tmp" "${chunk_args[@]}"
    mv "$out/$split-chunks.jsonl.tmp" "$out/$split-chunks.jsonl"
  fi
done
# Validation loss on a fixed subset keeps each evaluation short.
head -n "$val_limit" "$out/val-chunks.jsonl" >"$out/val-eval.jsonl"

# 3. Full training, checkpointed, resumed when a checkpoint exists.
common=(--seq-len "$ctx" --batch-tokens "$batch_tokens" --weight-decay "$weight_decay" --clip "$clip"
  --eval-every "$eval_every" --save-every "$save_every" -t "$threads" --chat-template chatml)
args=(finetune --full -m "$out/init.gguf" --data "$out/train-chunks.jsonl" --val "$out/val-eval.jsonl"
  -o "$out/base-f32.partial.gguf" --lr "$lr" --schedule cosine --checkpoint "$out/checkpoint.gguf" --seed "$seed"
  "${common[@]}")
if [[ -n "$steps" ]]; then args+=(--steps "$steps"); else args+=(--epochs "$epochs"); fi
[[ -n "$warmup" ]] && args+=(--warmup "$warmup")
checkpoint_step() {  # the step a checkpoint was written at (0 without one)
  [[ -s "$1" ]] || { echo 0; return; }
  "$pocketlm" info "$1" | sed -n 's/^ *checkpoint\.step  *u64  *\([0-9]*\).*/\1/p'
}
if [[ -n "$decay_at" ]]; then
  if [[ ! -s "$out/phase1.gguf" ]]; then
    at=$(checkpoint_step "$out/checkpoint.gguf")
    ((at < decay_at)) || { echo "error: $out/checkpoint.gguf is at step $at, not before --decay-at $decay_at" \
      "(if $out/stopped.gguf was written at step $decay_at, rename it to phase1.gguf)" >&2; exit 1; }
    stop_after=$((decay_at - at))
  fi
fi
[[ -n "$stop_after" ]] && args+=(--stop-after "$stop_after")
if [[ -z "$decay_at" || ! -s "$out/phase1.gguf" ]]; then
  if [[ -s "$out/checkpoint.gguf" ]]; then
    echo "resuming from $out/checkpoint.gguf"
    args+=(--resume "$out/checkpoint.gguf")
  fi
  echo "+ $pocketlm ${args[*]}" | tee -a "$out/train.log"
  "$pocketlm" "${args[@]}" 2>&1 | tee -a "$out/train.log"
  if [[ -n "$decay_at" ]]; then
    # stopped at --decay-at (or earlier, with --stop-after: then run again to get there)
    [[ $(checkpoint_step "$out/checkpoint.gguf") -eq $decay_at ]] ||
      { mv "$out/base-f32.partial.gguf" "$out/stopped.gguf"; echo "stopped before --decay-at: run again"; exit 0; }
    mv "$out/base-f32.partial.gguf" "$out/phase1.gguf"
  elif [[ -n "$stop_after" ]]; then
    # finetune writes -o at any stop; only a run that went to the last step is the trained base model
    mv "$out/base-f32.partial.gguf" "$out/stopped.gguf"
    echo "stopped early (--stop-after): run the command again without it to resume from $out/checkpoint.gguf"
    exit 0
  else
    mv "$out/base-f32.partial.gguf" "$out/base-f32.gguf"
    echo "trained base model: $out/base-f32.gguf"
    exit 0
  fi
fi

# 4. Cool-down from the weights at --decay-at: the cosine schedule's learning rate there (same formula as
# src/train/optimizer.cpp LearningRate, over the first run's step count from its log), linearly to 0.
total=$(sed -n 's/.* \([0-9][0-9]*\) steps of [0-9]* sequences.*/\1/p' "$out/train.log" | tail -n 1)
[[ -n "$total" ]] || { echo "error: $out/train.log does not say how many steps the first run planned" >&2; exit 1; }
decay_lr=$("$py" -c 'import math, sys
peak, step, total = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
warmup = int(sys.argv[4]) if sys.argv[4] else total * 3 // 100
print("%.6g" % (peak * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))))' \
  "$lr" "$decay_at" "$total" "$warmup")
args=(finetune --full -m "$out/phase1.gguf" --data "$out/train-chunks.jsonl" --val "$out/val-eval.jsonl"
  -o "$out/base-f32.partial.gguf" --lr "$decay_lr" --schedule linear --warmup "$decay_warmup" --steps "$decay_steps"
  --checkpoint "$out/decay-checkpoint.gguf" --seed $((seed + 1)) "${common[@]}")
if [[ -s "$out/decay-checkpoint.gguf" ]]; then
  echo "resuming the cool-down from $out/decay-checkpoint.gguf"
  args+=(--resume "$out/decay-checkpoint.gguf")
fi
echo "cool-down: step $decay_at of $total, learning rate $decay_lr -> 0 over $decay_steps steps" | tee -a "$out/train.log"
echo "+ $pocketlm ${args[*]}" | tee -a "$out/train.log"
"$pocketlm" "${args[@]}" 2>&1 | tee -a "$out/train.log"
mv "$out/base-f32.partial.gguf" "$out/base-f32.gguf"
echo "trained base model: $out/base-f32.gguf"
