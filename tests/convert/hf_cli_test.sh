#!/usr/bin/env bash
# `pocketlm import` / `pocketlm export` from the command line: a random llama model (make_random_model) exported and
# imported again, with GOLDEN_DIR also the golden phi3-tiny (fused qkv, which the generator does not make), and the
# error cases print exactly one "error: ..." line and leave no output file.
# usage: hf_cli_test.sh POCKETLM MAKE_RANDOM_MODEL GOLDEN_DIR WORKDIR
set -uo pipefail
bin="$1"; mkmodel="$2"; golden="$3"; work="$4"
rm -rf "$work" && mkdir -p "$work/out"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

expect_error() {  # NAME PATTERN DIR
  local name="$1" pattern="$2" dir="$3"
  "$bin" import "$dir" -o "$work/out/model.gguf" >"$work/stdout" 2>"$work/err" </dev/null
  local code=$?
  if [[ $code -ne 1 ]]; then fail "$name: exit code $code, expected 1"; cat "$work/err"; return; fi
  if [[ $(wc -l <"$work/err") -ne 1 ]] || ! grep -q '^error: ' "$work/err" || ! grep -qF -- "$pattern" "$work/err"; then
    fail "$name: expected one error line containing '$pattern', got:"; cat "$work/err"; return
  fi
  if [[ -n "$(ls -A "$work/out")" ]]; then fail "$name: left $(ls -A "$work/out")"; return; fi
  echo "ok: $name -> $(cat "$work/err")"
}

# llama-tiny's shape: n_embd 64, n_ff 160
"$mkmodel" "$work/llama.gguf" --ff 160 >/dev/null || { echo "FAIL: make_random_model"; exit 1; }
if "$bin" export "$work/llama.gguf" "$work/hf" >"$work/log" 2>&1 &&
   "$bin" import "$work/hf" -o "$work/llama-bf16.gguf" --dtype bf16 >>"$work/log" 2>&1 &&
   "$bin" info -m "$work/llama-bf16.gguf" | grep -q 'attn_q.weight *bf16'; then
  echo "ok: export + import --dtype bf16"
else fail "export + import"; cat "$work/log"; fi
if [[ -d "$golden/models" ]]; then
  if "$bin" export "$golden/models/phi3-tiny.gguf" "$work/hf-phi3" >"$work/log" 2>&1 &&
     "$bin" import "$work/hf-phi3" -o "$work/phi3.gguf" --dtype bf16 >>"$work/log" 2>&1 &&
     "$bin" info -m "$work/phi3.gguf" | grep -q 'attn_qkv.weight *bf16'; then
    echo "ok: golden phi3-tiny: export + import --dtype bf16"
  else fail "golden phi3-tiny: export + import"; cat "$work/log"; fi
else
  echo "skipped: golden phi3-tiny export + import ($golden not found)"
fi

cp -r "$work/hf" "$work/no-config" && rm "$work/no-config/config.json"
expect_error "missing config.json" "config.json' does not exist" "$work/no-config"
cp -r "$work/hf" "$work/bad-arch" && sed -i 's/LlamaForCausalLM/MambaForCausalLM/' "$work/bad-arch/config.json"
expect_error "unsupported architecture" "MambaForCausalLM is not supported" "$work/bad-arch"
cp -r "$work/hf" "$work/bad-shape" && sed -i 's/"intermediate_size": 160/"intermediate_size": 150/' "$work/bad-shape/config.json"
expect_error "shape mismatch" "but config.json implies" "$work/bad-shape"
cp -r "$work/hf" "$work/bad-st" && printf '#garbage' | dd of="$work/bad-st/model.safetensors" bs=1 seek=8 conv=notrunc 2>/dev/null
expect_error "corrupt safetensors header" "model.safetensors" "$work/bad-st"
expect_error "not a directory" "is not a directory" "$work/nowhere"

[[ $failures -eq 0 ]] && echo PASSED || echo "FAILED ($failures)"
exit $((failures > 0))
