#!/usr/bin/env bash
# Regenerates the small GGUF seed files in fuzz/corpus/gguf (kept far below 200 KB in total). The seeds cover
# every metadata type, nested arrays, a custom alignment and several tensor types, so the fuzzer starts from
# deep inside the format. Also the importance-matrix seeds in fuzz/corpus/imatrix (both formats). Usage: scripts/make-fuzz-corpus.sh
set -euo pipefail
out="$(cd "$(dirname "$0")/.." && pwd)/fuzz/corpus/gguf"
mkdir -p "$out"
python3 - "$out" <<'PY'
import struct, sys, os
out = sys.argv[1]
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
FMT = {U8: '<B', I8: '<b', U16: '<H', I16: '<h', U32: '<I', I32: '<i', F32: '<f', BOOL: '<B', U64: '<Q', I64: '<q', F64: '<d'}

def s(x):
    b = x.encode('utf-8')
    return struct.pack('<Q', len(b)) + b

def val(t, v):
    if t == STR:
        return s(v)
    if t == ARR:
        et, items = v
        body = struct.pack('<IQ', et, len(items))
        for it in items:
            body += val(et, it)
        return body
    return struct.pack(FMT[t], v)

def gguf(kvs, tensors, alignment=32):
    # tensors: (name, dims, ggml_type, data bytes)
    head = struct.pack('<IIQQ', 0x46554747, 3, len(tensors), len(kvs))
    for k, t, v in kvs:
        head += s(k) + struct.pack('<I', t) + val(t, v)
    off = 0
    for name, dims, typ, data in tensors:
        head += s(name) + struct.pack('<I', len(dims)) + b''.join(struct.pack('<Q', d) for d in dims)
        head += struct.pack('<IQ', typ, off)
        off += (len(data) + alignment - 1) // alignment * alignment
    head += b'\0' * (-len(head) % alignment)
    for _, _, _, data in tensors:
        head += data + b'\0' * (-len(data) % alignment)
    return head

def write(name, data):
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data)

write('empty-v3.gguf', gguf([], []))
write('all-types.gguf', gguf([
    ('general.architecture', STR, 'llama'), ('u8', U8, 255), ('i8', I8, -1), ('u16', U16, 65535), ('i16', I16, -2),
    ('u32', U32, 7), ('i32', I32, -7), ('f32', F32, 0.5), ('bool', BOOL, 1), ('u64', U64, 2**63), ('i64', I64, -5),
    ('f64', F64, 1e300), ('str', STR, 'h\u00e9llo \U0001F600'),
    ('arr.f32', ARR, (F32, [1.0, -2.0])), ('arr.str', ARR, (STR, ['a', '', 'bc'])),
    ('arr.nested', ARR, (ARR, [(I32, [1, 2]), (STR, ['x'])])), ('arr.bool', ARR, (BOOL, [0, 1])),
], [('w', [8], 0, struct.pack('<8f', *range(8)))]))
write('align64-quant.gguf', gguf([('general.alignment', U32, 64), ('general.name', STR, 'q')], [
    ('q4', [32, 2], 2, bytes(range(36))),         # q4_0: 2 blocks of 18 bytes
    ('q8', [32], 8, bytes(34)),                   # q8_0
    ('h', [3, 2], 1, struct.pack('<6H', 0x3C00, 0x7C00, 0xFC00, 0x7E00, 0x0001, 0x8000)),  # f16
], alignment=64))
write('vocab.gguf', gguf([
    ('general.architecture', STR, 'llama'), ('tokenizer.ggml.model', STR, 'gpt2'),
    ('tokenizer.ggml.tokens', ARR, (STR, ['<s>', '</s>', 'a', 'b', 'ab', '\u0120a'])),
    ('tokenizer.ggml.scores', ARR, (F32, [0.0, 0.0, -1.0, -1.0, -2.0, -3.0])),
    ('tokenizer.ggml.token_type', ARR, (I32, [3, 3, 1, 1, 1, 1])),
    ('tokenizer.ggml.merges', ARR, (STR, ['a b'])),
    ('tokenizer.ggml.bos_token_id', U32, 0), ('tokenizer.ggml.add_bos_token', BOOL, 1),
], []))
write('multi-tensor.gguf', gguf([('general.architecture', STR, 'x'), ('general.alignment', U32, 8)], [
    ('a', [2, 1, 1, 2], 30, bytes(8)),   # bf16, 4 dims
    ('b', [0], 0, b''),                  # empty tensor
    ('c', [4, 3], 26, bytes(48)),        # i32
    ('d', [256], 14, bytes(210)),        # q6_K
], alignment=8))

# Importance matrices (fuzz_imatrix): llama-imatrix's binary format with and without its trailer, and the GGUF one.
imat = os.path.join(os.path.dirname(out), 'imatrix')
os.makedirs(imat, exist_ok=True)
def entry(name, ncall, vals):
    b = name.encode()
    return struct.pack('<i', len(b)) + b + struct.pack('<ii', ncall, len(vals)) + struct.pack('<%df' % len(vals), *vals)
entries = entry('blk.0.attn_q.weight', 2, [2.0, 0.5, 0.0, 8.0]) + entry('blk.0.ffn_down.weight', 2, [1.0, 4.0])
for name, data in [('two-entries.imatrix', struct.pack('<i', 2) + entries + struct.pack('<ii', 2, 9) + b'calib.txt'),
                   ('no-trailer.imatrix', struct.pack('<i', 2) + entries)]:
    with open(os.path.join(imat, name), 'wb') as f:
        f.write(data)
with open(os.path.join(imat, 'experts.gguf'), 'wb') as f:
    f.write(gguf([('general.type', STR, 'imatrix'), ('imatrix.chunk_count', U32, 3), ('imatrix.chunk_size', U32, 64),
                  ('imatrix.datasets', ARR, (STR, ['calib.txt']))], [
        ('blk.0.attn_q.weight.in_sum2', [4, 1], 0, struct.pack('<4f', 6, 3, 0, 1.5)),
        ('blk.0.attn_q.weight.counts', [1, 1], 0, struct.pack('<f', 3)),
        ('blk.0.ffn_up_exps.weight.in_sum2', [2, 2], 0, struct.pack('<4f', 1, 2, 3, 4)),  # two experts, one unused
        ('blk.0.ffn_up_exps.weight.counts', [1, 2], 0, struct.pack('<2f', 2, 0)),
    ]))
PY
du -cb "$out"/* "$out"/../imatrix/* | tail -1
