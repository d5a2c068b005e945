"""Writes a safetensors file from the format's spec alone (no safetensors package, no pocketlm code), so the C++
reader is tested against bytes another implementation produced.
usage: make_safetensors.py OUT [--unpadded]
Spec (github.com/huggingface/safetensors README): u64 little-endian header size N, N bytes of JSON header
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the byte buffer."""
import json
import struct
import sys

import numpy as np

out = sys.argv[1]
padded = "--unpadded" not in sys.argv

f32 = np.arange(6, dtype="<f4").reshape(2, 3) * np.float32(0.5) - np.float32(1.0)
f16 = np.array([1.0, -2.5, 65504.0, 2.0**-24], dtype="<f2")
# numpy has no bfloat16: its bits are the top half of a float32 (these values are exact in bf16).
bf16 = (np.array([1.0, -0.5, 3.0, 256.0], dtype="<f4").view("<u4") >> 16).astype("<u2").reshape(2, 2)
i64 = np.array([-1, 2**40], dtype="<i8")
scalar = np.array(7.25, dtype="<f4")

# Data deliberately not in name order, and the JSON entries in yet another order.
items = [("z.first", "F32", f32), ("a.bf16", "BF16", bf16), ("m.f16", "F16", f16), ("i64", "I64", i64),
         ("scalar", "F32", scalar), ("empty", "F32", np.zeros((0, 3), dtype="<f4"))]
header, data, off = {}, b"", 0
for name, dtype, arr in items:
    raw = arr.tobytes()
    header[name] = {"shape": list(arr.shape), "dtype": dtype, "data_offsets": [off, off + len(raw)]}
    data += raw
    off += len(raw)
header = dict(reversed(list(header.items())))
header["__metadata__"] = {"format": "pt", "note": "h\u00e9llo"}
text = json.dumps(header).encode("utf-8")
if padded:
    text += b" " * ((8 - len(text) % 8) % 8)
elif len(text) % 8 == 0:
    text += b" "  # make sure the data really is misaligned
with open(out, "wb") as fh:
    fh.write(struct.pack("<Q", len(text)) + text + data)
