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
