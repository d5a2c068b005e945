#!/usr/bin/env bash
# `pocketlm import` / `pocketlm export` from the command line: a golden model exported and imported again, and the
# error cases print exactly one "error: ..." line and leave no output file.
# usage: hf_cli_test.sh POCKETLM GOLDEN_DIR WORKDIR     (exit 77 = skipped when GOLDEN_DIR is absent)
set -uo pipefail
bin="$1"; golden="$2"; work="$3"
if [[ ! -d "$golden/models" ]]; then echo "SKIPPED: $golden not found"; exit 77; fi
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

if "$bin" export "$golden/models/phi3-tiny.gguf" "$work/hf" >"$work/log" 2>&1 &&
   "$bin" import "$work/hf" -o "$work/phi3.gguf" --dtype bf16 >>"$work/log" 2>&1 &&
   "$bin" info -m "$work/phi3.gguf" | grep -q 'attn_qkv.weight *bf16'; then
  echo "ok: export + import --dtype bf16"
else fail "export + import"; cat "$work/log"; fi

cp -r "$work/hf" "$work/no-config" && rm "$work/no-config/config.json"
expect_error "missing config.json" "config.json' does not exist" "$work/no-config"
cp -r "$work/hf" "$work/bad-arch" && sed -i 's/Phi3ForCausalLM/MambaForCausalLM/' "$work/bad-arch/config.json"
expect_error "unsupported architecture" "MambaForCausalLM is not supported" "$work/bad-arch"
cp -r "$work/hf" "$work/bad-shape" && sed -i 's/"intermediate_size": 160/"intermediate_size": 150/' "$work/bad-shape/config.json"
expect_error "shape mismatch" "but config.json implies" "$work/bad-shape"
cp -r "$work/hf" "$work/bad-st" && printf '#garbage' | dd of="$work/bad-st/model.safetensors" bs=1 seek=8 conv=notrunc 2>/dev/null
expect_error "corrupt safetensors header" "model.safetensors" "$work/bad-st"
expect_error "not a directory" "is not a directory" "$work/nowhere"

[[ $failures -eq 0 ]] && echo PASSED || echo "FAILED ($failures)"
exit $((failures > 0))
