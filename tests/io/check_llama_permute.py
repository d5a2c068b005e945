"""Checks pocketlm's PEFT export of a llama LoRA adapter against llama.cpp's own formula, independently of the C++.
usage: check_llama_permute.py PEFT.safetensors GGUF_PAIRS.safetensors N_HEAD N_HEAD_KV
GGUF_PAIRS holds the GGUF adapter's tensors under their GGUF names (e.g. blk.0.attn_q.weight.lora_b, shape
(n_out, r)); PEFT.safetensors is what pocketlm wrote. Reads both from the safetensors spec with numpy only."""
import json
import struct
import sys

import numpy as np


def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", e
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data[b:end], dtype="<f4").reshape(e["shape"])
    return out


# llama.cpp convert_hf_to_gguf.py, LlamaModel.permute, applied to q_proj with (n_head, n_head) and to k_proj
# with (n_head, n_head_kv); for LoRA, convert_lora_to_gguf.py's LoraTorchTensor moves only lora_B's rows.
def permute(weights, n_head, n_head_kv):
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


peft, gguf = load(sys.argv[1]), load(sys.argv[2])
n_head, n_head_kv = int(sys.argv[3]), int(sys.argv[4])
modules = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
           "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
checked = 0
for name, a in peft.items():
    if not name.endswith(".lora_A.weight"):
        continue
    module = name[len("base_model.model."):-len(".lora_A.weight")]
    layer = int(module.split(".")[2])
    kind = modules[module.split(".")[-1]]
    b = peft[name.replace("lora_A", "lora_B")]
    target = f"blk.{layer}.{kind}.weight"
    if kind == "attn_q":
        b = permute(b, n_head, n_head)
    elif kind == "attn_k":
        b = permute(b, n_head, n_head_kv)
    assert np.array_equal(a, gguf[target + ".lora_a"]), target
    assert np.array_equal(b, gguf[target + ".lora_b"]), target
    assert np.allclose(b @ a, gguf[target + ".lora_b"] @ gguf[target + ".lora_a"]), target
    checked += 1
assert checked == len(gguf) // 2, (checked, len(gguf))
print("checked", checked, "pairs")
