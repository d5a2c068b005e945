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
set -euo pipefail
cd "$(dirname "$0")/.."
py=/usr/bin/python3

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
corpus="" vocab="" out="" spm_model="" bin_dir=build/release
steps="" epochs=1 threads=2 seed=1
layers=8 embd=256 heads=8 kv_heads=4 ff=704 ctx=256 init_std=0.02
stop_after=""
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
    *) echo "error: unknown option '$1'" >&2; usage ;;
  esac
  shift 2
done
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
args=(finetune --full -m "$out/init.gguf" --data "$out/train-chunks.jsonl" --val "$out/val-eval.jsonl"
  -o "$out/base-f32.partial.gguf" --seq-len "$ctx" --batch-tokens "$batch_tokens" --lr "$lr" --schedule cosine
  --weight-decay "$weight_decay" --clip "$clip" --eval-every "$eval_every" --save-every "$save_every"
  --checkpoint "$out/checkpoint.gguf" --seed "$seed" -t "$threads" --chat-template chatml)
if [[ -n "$steps" ]]; then args+=(--steps "$steps"); else args+=(--epochs "$epochs"); fi
[[ -n "$warmup" ]] && args+=(--warmup "$warmup")
[[ -n "$stop_after" ]] && args+=(--stop-after "$stop_after")
if [[ -s "$out/checkpoint.gguf" ]]; then
  echo "resuming from $out/checkpoint.gguf"
  args+=(--resume "$out/checkpoint.gguf")
fi
echo "+ $pocketlm ${args[*]}" | tee -a "$out/train.log"
"$pocketlm" "${args[@]}" 2>&1 | tee -a "$out/train.log"
if [[ -n "$stop_after" ]]; then
  # finetune writes -o at any stop; only a run that went to the last step is the trained base model
  mv "$out/base-f32.partial.gguf" "$out/stopped.gguf"
  echo "stopped early (--stop-after): run the command again without it to resume from $out/checkpoint.gguf"
else
  mv "$out/base-f32.partial.gguf" "$out/base-f32.gguf"
  echo "trained base model: $out/base-f32.gguf"
fi
