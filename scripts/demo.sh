#!/usr/bin/env bash
# Sets everything up and runs pocketlm on the embedded default model.
# Until pocketlm's own trained base model lands (see the README's status), the embedded default is a small
# random-weight llama model that pocketlm writes itself: it shows the machinery, its text is noise.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
bin=build/release/tools/cli/pocketlm
model=build/demo/random-llama.gguf
mkdir -p build/demo
[[ -f "$model" ]] || build/release/tools/mkmodel/make_random_model "$model" --layers 4 --embd 128

echo; echo "== pocketlm info (first lines)"
"$bin" info -m "$model" >build/demo/info.txt && head -n 12 build/demo/info.txt
echo; echo "== pocketlm tokenize"
echo "The small model runs in a pocket." | "$bin" tokenize -m "$model"
echo; echo "== pocketlm run (random weights: expect noise)"
"$bin" run -m "$model" -p "The small model" -n 32 --seed 1
echo; echo "== pocketlm quantize to 8 bits, then run the quantized model"
"$bin" quantize "$model" build/demo/random-llama-q8_0.gguf --type q8_0 2>&1 | tail -n 2
"$bin" run -m build/demo/random-llama-q8_0.gguf -p "The small model" -n 32 --seed 1
echo; echo "== pocketlm bench"
"$bin" bench -m "$model" -p 64 -n 32 -r 3

echo; echo "== pocketlm finetune: a LoRA adapter that learns to reverse three words (synthetic data)"
data=build/demo/reverse
words=(red blue green cat dog sun moon tree)
make_data() {  # make_data FILE N SEED: {"prompt": "reverse: a b c ->", "completion": " c b a"} per line
  RANDOM=$3
  : >"$1"
  for ((i = 0; i < $2; i++)); do
    a=${words[RANDOM % 8]} b=${words[RANDOM % 8]} c=${words[RANDOM % 8]}
    printf '{"prompt": "reverse: %s %s %s ->", "completion": " %s %s %s"}\n' "$a" "$b" "$c" "$c" "$b" "$a" >>"$1"
  done
}
make_data $data-train.jsonl 400 1
make_data $data-val.jsonl 40 2
"$bin" finetune -m "$model" --data $data-train.jsonl --val $data-val.jsonl -o build/demo/reverse-lora.gguf \
  --rank 16 --lr 3e-3 --steps 200 --seq-len 64 --batch-tokens 256 --eval-every 50
echo; echo "== pocketlm run with the adapter (greedy)"
"$bin" run -m "$model" --lora build/demo/reverse-lora.gguf -p "reverse: red cat dog ->" -n 16 --temp 0
