#!/usr/bin/env bash
# One training step of pocketlm against the PyTorch reference on one golden model.
#   run_torch_reference.sh TRAIN_STEP_DUMP MODEL.gguf REFERENCE.py [full|distill|distill-topk]
#   (PLM_EMULATOR: e.g. qemu-aarch64)
set -euo pipefail
dump=$1 model=$2 script=$3 mode=${4:-}
[[ -f "$model" ]] || { echo "SKIP: $model not found (golden models live in ../shared)"; exit 77; }
/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null || { echo "SKIP: python3-torch not installed"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
${PLM_EMULATOR:-} "$dump" "$model" "$dir" $mode
/usr/bin/python3 "$script" "$model" "$dir" $mode
