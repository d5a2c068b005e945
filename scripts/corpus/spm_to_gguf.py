"""Converts a SentencePiece model (spm_train's .model file) into a vocabulary-only GGUF file for pocketlm.

Why: pocketlm reads vocabularies from GGUF the way llama.cpp does (tokenizer.ggml.model = "llama": tokens,
scores, token types, byte fallback). Its own base model's tokenizer is trained with Debian's `spm_train`; this
script turns the result into that GGUF layout with the Python standard library only: the .model file is a
protobuf (sentencepiece_model.proto), of which the few fields needed are decoded here by hand, and the GGUF v3
file is written with struct. make_random_model --vocab takes the tokenizer from the file this writes.

Token types are SentencePiece's, which llama.cpp's LLAMA_TOKEN_TYPE_* copy (1 normal, 2 unknown, 3 control,
4 user-defined, 5 unused, 6 byte). Exception: the chat markers given by --control (default <|im_start|>,
<|im_end|>) are trained as user-defined symbols, so spm_train never splits them, but written as control tokens:
they then become tokens only where pocketlm renders a chat template (or is asked to parse special tokens), and
the same text in user data stays plain text, as for Qwen's ChatML vocabularies.

pocketlm, like llama.cpp, applies no SentencePiece normalisation, so a model trained with anything but
--normalization_rule_name=identity and --remove_extra_whitespaces=false would tokenize differently; the script
refuses such a model unless --allow-normalizer is given.

usage: spm_to_gguf.py MODEL.model OUT.gguf [--name NAME] [--control PIECE,...] [--chat-template JINJA]
                      [--no-chat-template] [--allow-normalizer]
"""

import argparse
import struct
import sys

# ChatML as Qwen2 and SmolLM2 write it; pocketlm's DetectChatTemplate recognises it by "<|im_start|>".
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


# --- protobuf (wire format: https://protobuf.dev/programming-guides/encoding/) ------------------------------

def _varint(buf, pos):
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def parse_message(buf):
    """[(field number, wire type, value)]: varints as int, fixed32/64 as raw bytes, length-delimited as bytes."""
    fields, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated protobuf field")
        fields.append((field, wire, value))
    return fields


def _signed32(v):
    v &= 0xFFFFFFFFFFFFFFFF
    return v - (1 << 64) if v >= 1 << 63 else v


class SpmModel:
    """The parts of sentencepiece_model.proto's ModelProto that the conversion needs."""

    def __init__(self, data):
        self.pieces = []  # (text, score, type)
        trainer = normalizer = b""
        for field, wire, value in parse_message(data):
            if field == 1 and wire == 2:  # repeated SentencePiece pieces
                text, score, typ = "", 0.0, NORMAL
                for f, w, v in parse_message(value):
                    if f == 1 and w == 2:
                        text = v.decode("utf-8")
                    elif f == 2 and w == 5:
                        score = struct.unpack("<f", v)[0]
                    elif f == 3 and w == 0:
                        typ = v
                self.pieces.append((text, score, typ))
            elif field == 2 and wire == 2:
                trainer = value
            elif field == 3 and wire == 2:
                normalizer = value
        if not self.pieces:
            raise ValueError("no pieces: not a SentencePiece model")
        # TrainerSpec: model_type 3 (1 unigram, 2 bpe), byte_fallback 35, unk/bos/eos/pad ids 40-43.
        self.model_type, self.byte_fallback = 1, False
        self.unk_id, self.bos_id, self.eos_id, self.pad_id = 0, 1, 2, -1
        for f, w, v in parse_message(trainer):
            if w != 0:
                continue
            if f == 3:
                self.model_type = v
            elif f == 35:
                self.byte_fallback = bool(v)
            elif f in (40, 41, 42, 43):
                setattr(self, {40: "unk_id", 41: "bos_id", 42: "eos_id", 43: "pad_id"}[f], _signed32(v))
        # NormalizerSpec: name 1, add_dummy_prefix 3, remove_extra_whitespaces 4 (both default true).
        self.normalizer_name, self.add_dummy_prefix, self.remove_extra_whitespaces = "", True, True
        for f, w, v in parse_message(normalizer):
            if f == 1 and w == 2:
                self.normalizer_name = v.decode("utf-8")
            elif f == 3 and w == 0:
                self.add_dummy_prefix = bool(v)
            elif f == 4 and w == 0:
                self.remove_extra_whitespaces = bool(v)


# --- GGUF v3 (ggml/docs/gguf.md) ------------------------------------------------------------------------------

T_U32, T_I32, T_F32, T_BOOL, T_STRING, T_ARRAY = 4, 5, 6, 7, 8, 9


def _gguf_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _gguf_value(typ, value):
    if typ == T_U32:
        return struct.pack("<I", value)
    if typ == T_I32:
        return struct.pack("<i", value)
    if typ == T_F32:
        return struct.pack("<f", value)
    if typ == T_BOOL:
        return struct.pack("<B", 1 if value else 0)
    if typ == T_STRING:
        return _gguf_string(value)
    raise ValueError(f"type {typ}")


def write_gguf(path, kvs, alignment=32):
    """A GGUF v3 file with metadata only. kvs: [(key, type, value)]; an array is (key, (T_ARRAY, elem), list)."""
    out = [b"GGUF", struct.pack("<IQQ", 3, 0, len(kvs))]
    for key, typ, value in kvs:
        out.append(_gguf_string(key))
        if isinstance(typ, tuple):
            elem = typ[1]
            out.append(struct.pack("<IIQ", T_ARRAY, elem, len(value)))
            if elem == T_F32:
                out.append(struct.pack(f"<{len(value)}f", *value))
            elif elem == T_I32:
                out.append(struct.pack(f"<{len(value)}i", *value))
            else:
                out.extend(_gguf_value(elem, v) for v in value)
        else:
            out.append(struct.pack("<I", typ) + _gguf_value(typ, value))
    data = b"".join(out)
    data += b"\0" * (-len(data) % alignment)  # the (empty) tensor data section starts aligned
    with open(path, "wb") as f:
        f.write(data)


def convert(model, name, control=("<|im_start|>", "<|im_end|>"), chat_template=CHATML_TEMPLATE):
    """The GGUF metadata [(key, type, value)] for `model` (an SpmModel)."""
    tokens, scores, types = [], [], []
    for text, score, typ in model.pieces:
        if typ == USER_DEFINED and text in control:
            typ = CONTROL
        tokens.append(text)
        scores.append(score)
        types.append(typ)
    kvs = [("general.architecture", T_STRING, "llama"),
           ("general.name", T_STRING, name),
           ("tokenizer.ggml.model", T_STRING, "llama"),
           ("tokenizer.ggml.tokens", (T_ARRAY, T_STRING), tokens),
           ("tokenizer.ggml.scores", (T_ARRAY, T_F32), scores),
           ("tokenizer.ggml.token_type", (T_ARRAY, T_I32), types)]
    for key, tid in (("bos", model.bos_id), ("eos", model.eos_id), ("unknown", model.unk_id),
                     ("padding", model.pad_id)):
        if 0 <= tid < len(tokens):
            kvs.append((f"tokenizer.ggml.{key}_token_id", T_U32, tid))
    if "<|im_end|>" in tokens:
        kvs.append(("tokenizer.ggml.eot_token_id", T_U32, tokens.index("<|im_end|>")))
    kvs += [("tokenizer.ggml.add_bos_token", T_BOOL, 0 <= model.bos_id < len(tokens)),
            ("tokenizer.ggml.add_eos_token", T_BOOL, False),
            ("tokenizer.ggml.add_space_prefix", T_BOOL, model.add_dummy_prefix)]
    if chat_template:
        kvs.append(("tokenizer.chat_template", T_STRING, chat_template))
    return kvs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--name", default="pocketlm tokenizer")
    ap.add_argument("--control", default="<|im_start|>,<|im_end|>",
                    help="user-defined pieces to write as control tokens (comma-separated)")
    ap.add_argument("--chat-template", default=CHATML_TEMPLATE)
    ap.add_argument("--no-chat-template", action="store_true")
    ap.add_argument("--allow-normalizer", action="store_true",
                    help="convert even if spm normalises text (pocketlm will then tokenize differently)")
    a = ap.parse_args(argv)
    try:
        with open(a.model, "rb") as f:
            model = SpmModel(f.read())
    except (OSError, ValueError, UnicodeDecodeError) as e:
        sys.exit(f"error: {a.model}: {e}")
    problems = []
    if model.normalizer_name not in ("identity", ""):
        problems.append(f"normalization rule '{model.normalizer_name}' (train with --normalization_rule_name=identity)")
    if model.remove_extra_whitespaces:
        problems.append("remove_extra_whitespaces is on (train with --remove_extra_whitespaces=false)")
    if problems and not a.allow_normalizer:
        sys.exit(f"error: {a.model}: pocketlm applies no SentencePiece normalisation, so it would tokenize "
                 f"differently: {'; '.join(problems)}. Pass --allow-normalizer to convert anyway.")
    if model.model_type != 2:
        print(f"warning: {a.model} is not a BPE model (model_type {model.model_type}); pocketlm's SentencePiece "
              "tokenizer merges by score as llama.cpp does, which matches spm only for BPE", file=sys.stderr)
    kvs = convert(model, a.name, tuple(p for p in a.control.split(",") if p),
                  None if a.no_chat_template else a.chat_template)
    write_gguf(a.out, kvs)
    n_byte = sum(1 for _, _, t in model.pieces if t == BYTE)
    print(f"wrote {a.out}: {len(model.pieces)} tokens ({n_byte} byte tokens), bos {model.bos_id}, eos {model.eos_id}, "
          f"unk {model.unk_id}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
