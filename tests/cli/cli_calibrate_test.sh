#!/usr/bin/env bash
# `pocketlm calibrate` driven as a user would, on a random model with llama-kq's row lengths (make_random_model) and a
# generated text: the importance matrix it writes (llama.cpp's binary format, read here with Python's struct), its
# use by `pocketlm quantize --imatrix`, and the errors (one line, exit code 1, no file left behind).
# usage: cli_calibrate_test.sh POCKETLM MAKE_RANDOM_MODEL WORKDIR
set -uo pipefail
bin="$1"; mkmodel="$2"; work="$3"
rm -rf "$work" && mkdir -p "$work/out"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# One layer of llama-kq's layout (n_embd 256, rows multiples of 256, so every k-quant applies to every matrix).
model="$work/model.gguf"
${PLM_EMULATOR:-} "$mkmodel" "$model" --layers 1 --embd 256 --heads 4 --kv-heads 2 --ff 256 --tied --seed 3 \
  >/dev/null || { echo "FAIL: make_random_model"; exit 1; }
text="$work/calib.txt"
for i in $(seq 1 12); do
  echo "Line $i: the quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs."
done >"$text"
n_tokens=$(plm tokenize -m "$model" <"$text" | wc -w)
echo "calibration text: $n_tokens tokens"
chunks=$((n_tokens / 64))

# check_imatrix FILE CHUNKS DATASET: 7 entries (one layer) of n_values 256 and CHUNKS calls, finite values >= 0,
# then the trailer (chunk count, dataset name) and nothing after it.
check_imatrix() {
  python3 - "$@" <<'PY'
import math, struct, sys
path, chunks, dataset = sys.argv[1], int(sys.argv[2]), sys.argv[3]
b = open(path, 'rb').read()
n, = struct.unpack_from('<i', b, 0); p = 4
names = []
for _ in range(n):
    ln, = struct.unpack_from('<i', b, p); p += 4
    names.append(b[p:p + ln].decode()); p += ln
    ncall, nv = struct.unpack_from('<ii', b, p); p += 8
    vals = struct.unpack_from('<%df' % nv, b, p); p += 4 * nv
    assert ncall == chunks, (names[-1], ncall)
    assert nv == 256, (names[-1], nv)
    assert all(math.isfinite(v) and v >= 0 for v in vals), names[-1]
    assert max(vals) > 0, names[-1]
c, ln = struct.unpack_from('<ii', b, p); p += 8
assert c == chunks, c
assert b[p:p + ln].decode() == dataset, b[p:p + ln]
assert p + ln == len(b), 'bytes after the trailer'
want = sorted('blk.0.%s.weight' % t for t in
              ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'])
assert names == want, names
PY
}

# --- a matrix from the text: summary line, file in the format llama-quantize reads ---
imatrix="$work/model.imatrix"
if plm calibrate -m "$model" --text "$text" -o "$imatrix" -c 64 >"$work/stdout" 2>"$work/log"; then
  if grep -qE "^wrote .*model.imatrix: 7 matrices from $chunks chunks of 64 tokens \\($n_tokens tokens in calib.txt\\)$" \
       "$work/stdout"; then echo "ok: summary: $(cat "$work/stdout")"; else fail "summary line: $(cat "$work/stdout")"; fi
  grep -q "^$chunks/$chunks chunks" "$work/log" || fail "no final progress line on stderr: $(cat "$work/log")"
  if check_imatrix "$imatrix" "$chunks" calib.txt; then echo "ok: $chunks chunks, 7 entries"; else fail "imatrix contents"; fi
  tmp=("$work"/*.tmp-*)
  [[ -e "${tmp[0]}" ]] && fail "temp file left beside the output: ${tmp[*]}"
else
  fail "calibrate"; cat "$work/log"
fi
if plm calibrate -m "$model" --text "$text" -o "$work/two.imatrix" --ctx 64 --chunks 2 >"$work/stdout" 2>"$work/log" &&
   check_imatrix "$work/two.imatrix" 2 calib.txt; then echo "ok: --chunks 2"; else fail "--chunks 2"; cat "$work/log"; fi

# --- quantize uses it: the matrix changes the quantized weights ---
if plm quantize "$model" "$work/im.gguf" --type q4_k_m --imatrix "$imatrix" >"$work/stdout" 2>"$work/log" &&
   plm quantize "$model" "$work/plain.gguf" --type q4_k_m >/dev/null 2>&1; then
  grep -q "importance matrix .*: 7 entries from $chunks chunks of calib.txt" "$work/log" ||
    fail "quantize --imatrix: no summary of the matrix: $(cat "$work/log")"
  if cmp -s "$work/im.gguf" "$work/plain.gguf"; then fail "quantize --imatrix: same file as without the matrix"
  else echo "ok: quantize --imatrix reads it and weighs with it"; fi
  plm run -m "$work/im.gguf" -p "the quick" -n 4 --temp 0 >/dev/null 2>&1 || fail "the weighted model does not run"
else
  fail "quantize --imatrix"; cat "$work/log"
fi

# --- errors ---
out="$work/out/m.imatrix"
expect_clean_error "neither --text nor --data" "--text FILE or --data FILE.jsonl" plm calibrate -m "$model" -o "$out"
expect_clean_error "both --text and --data" "--text FILE or --data FILE.jsonl" \
  plm calibrate -m "$model" --text "$text" --data "$work/x.jsonl" -o "$out"
expect_clean_error "no output" "output" plm calibrate -m "$model" --text "$text"
expect_clean_error "--ctx 8" "--ctx 8 is too short" plm calibrate -m "$model" --text "$text" -o "$out" --ctx 8
expect_clean_error "missing text file" "nope.txt" plm calibrate -m "$model" --text "$work/nope.txt" -o "$out"
echo "Too short." >"$work/short.txt"
short_tokens=$(plm tokenize -m "$model" <"$work/short.txt" | wc -w)
expect_clean_error "text shorter than a chunk" "has $short_tokens tokens, fewer than one chunk of 64" \
  plm calibrate -m "$model" --text "$work/short.txt" -o "$out" -c 64
expect_clean_error "text shorter than the default chunk of 512" "has $short_tokens tokens, fewer than one chunk of 512" \
  plm calibrate -m "$model" --text "$work/short.txt" -o "$out"
expect_clean_error "output in a missing directory" "out/none/m.imatrix" \
  plm calibrate -m "$model" --text "$text" -o "$work/out/none/m.imatrix" -c 64
mkdir -p "$work/dir/out.imatrix"
expect_clean_error "output is a directory" "out.imatrix' is a directory" \
  plm calibrate -m "$model" --text "$text" -o "$work/dir/out.imatrix" -c 64
[[ "$(ls -A "$work/dir")" == out.imatrix && -z "$(ls -A "$work/dir/out.imatrix")" ]] ||
  fail "output is a directory: left files behind: $(ls -A "$work/dir" "$work/dir/out.imatrix")"

if [[ $failures -gt 0 ]]; then echo "$failures failure(s)"; exit 1; fi
echo "all calibrate CLI checks passed"
