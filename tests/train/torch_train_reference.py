#!/usr/bin/python3
"""PyTorch reference for one LoRA training step (and five AdamW steps) of pocketlm's trainer.

Usage: torch_train_reference.py BASE.gguf DUMP_DIR [full|distill|distill-topk]
DUMP_DIR holds what tests/train/train_step_dump.cpp wrote: adapter.gguf (the initial LoRA factors), seq.bin
(tokens, targets, segment starts, positions) and result.gguf (pocketlm's loss, LoRA gradients and the losses of
five optimizer steps, with the hyper-parameters). With "full", every weight is trainable (full fine-tuning) and
result.gguf holds grad.<tensor> for each. With "distill" / "distill-topk" the loss is the distillation loss
(ops/distill_loss.h) against the teacher rows in teacher.gguf, written here from its definition (Hinton et al. 2015):
(1 - w) CE + w T^2 KL(p || softmax(z / T)), the top-k form with one rest bucket on each side; loss and LoRA
gradients are compared. The model is re-implemented here independently, in float64,
from the GGUF tensors and llama.cpp's conventions; autograd gives the gradients. Exit 0 when everything agrees,
1 otherwise, 77 when torch is unavailable.
"""
import math
import struct
import sys

try:
    import numpy as np
    import torch
except ImportError:
    print("SKIP: python3-torch / python3-numpy not installed")
    sys.exit(77)

# ---------------------------------------------------------------- GGUF (metadata + f32 tensors only)
_SCALAR = {0: '<B', 1: '<b', 2: '<H', 3: '<h', 4: '<I', 5: '<i', 6: '<f', 7: '<?', 10: '<Q', 11: '<q', 12: '<d'}


def _read_str(f):
    n, = struct.unpack('<Q', f.read(8))
    return f.read(n).decode('utf-8', errors='replace')


def _read_value(f, t):
    if t == 8:
        return _read_str(f)
    if t == 9:
        et, n = struct.unpack('<IQ', f.read(12))
        return [_read_value(f, et) for _ in range(n)]
    fmt = _SCALAR[t]
    return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]


def read_gguf(path):
    with open(path, 'rb') as f:
        magic, version, n_tensors, n_kv = struct.unpack('<IIQQ', f.read(24))
        assert magic == 0x46554747 and version in (2, 3), path
        kv = {}
        for _ in range(n_kv):
            key = _read_str(f)
            t, = struct.unpack('<I', f.read(4))
            kv[key] = _read_value(f, t)
        infos = []
        for _ in range(n_tensors):
            name = _read_str(f)
            n_dims, = struct.unpack('<I', f.read(4))
            ne = struct.unpack('<%dQ' % n_dims, f.read(8 * n_dims))
            typ, off = struct.unpack('<IQ', f.read(12))
            infos.append((name, ne, typ, off))
        align = kv.get('general.alignment', 32)
        data_start = (f.tell() + align - 1) // align * align
        tensors = {}
        for name, ne, typ, off in infos:
            assert typ == 0, '%s: only f32 tensors are supported by this reference' % name
            count = int(np.prod(ne))
            f.seek(data_start + off)
            arr = np.frombuffer(f.read(4 * count), dtype='<f4').astype(np.float64)
            # ggml ne = [n_in, n_out] -> numpy (n_out, n_in)
            tensors[name] = torch.tensor(arr.reshape(tuple(reversed(ne))))
        return kv, tensors


# ---------------------------------------------------------------- the model
class Config:
    def __init__(self, kv):
        a = kv['general.architecture']
        self.arch = a
        g = lambda k, d=None: kv.get(a + '.' + k, d)
        self.n_embd = g('embedding_length')
        self.n_layer = g('block_count')
        self.n_head = g('attention.head_count')
        self.n_head_kv = g('attention.head_count_kv', self.n_head)
        self.head_dim = g('attention.key_length', self.n_embd // self.n_head)
        self.rope_dim = g('rope.dimension_count', self.head_dim)
        self.eps = g('attention.layer_norm_rms_epsilon', 1e-5)
        self.rope_base = g('rope.freq_base', 10000.0)
        self.attn_softcap = g('attn_logit_softcapping', 0.0)
        self.final_softcap = g('final_logit_softcapping', 0.0)
        self.window = g('attention.sliding_window', 0)
        self.neox = a != 'llama'
        self.gelu = a == 'gemma2'
        self.post_norms = a == 'gemma2'
        self.embd_scale = math.sqrt(self.n_embd) if a == 'gemma2' else 1.0

    def sliding(self, layer):
        if self.window <= 0:
            return False
        if self.arch == 'phi3':
            return True
        if self.arch == 'gemma2':
            return layer % 2 == 0
        return False


def rms_norm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rope(x, pos, cfg, freq_factors):
    # x: (T, heads, head_dim); rotate the first rope_dim dims
    d = cfg.rope_dim
    half = d // 2
    i = torch.arange(half, dtype=torch.float64)
    inv = cfg.rope_base ** (-2.0 * i / d)
    if freq_factors is not None:
        inv = inv / freq_factors
    theta = pos[:, None].double() * inv[None, :]  # (T, half)
    c = torch.cos(theta)[:, None, :]
    s = torch.sin(theta)[:, None, :]
    if cfg.neox:
        a, b = x[..., :half], x[..., half:d]
    else:
        a, b = x[..., 0:d:2], x[..., 1:d:2]
    ra = a * c - b * s
    rb = a * s + b * c
    if cfg.neox:
        rot = torch.cat([ra, rb], -1)
    else:
        rot = torch.stack([ra, rb], -1).reshape(a.shape[:-1] + (d,))
    return torch.cat([rot, x[..., d:]], -1)


def attention(q, k, v, cfg, layer, seg_start):
    T = q.shape[0]
    group = cfg.n_head // cfg.n_head_kv
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    scores = torch.einsum('thd,jhd->htj', q, k) / math.sqrt(cfg.head_dim)
    if cfg.attn_softcap > 0:
        scores = cfg.attn_softcap * torch.tanh(scores / cfg.attn_softcap)
    t_idx = torch.arange(T)[:, None]
    j_idx = torch.arange(T)[None, :]
    allowed = (j_idx <= t_idx) & (j_idx >= seg_start[:, None])
    if cfg.sliding(layer):
        allowed &= j_idx > t_idx - cfg.window
    scores = scores.masked_fill(~allowed[None], float('-inf'))
    p = torch.softmax(scores, -1)
    return torch.einsum('htj,jhd->thd', p, v)


class Lora:
    def __init__(self, adapter_kv, adapter_tensors):
        self.alpha = adapter_kv['adapter.lora.alpha']
        self.a = {}
        self.b = {}
        for name, t in adapter_tensors.items():
            base = name[:-len('.lora_a')]
            if name.endswith('.lora_a'):
                self.a[base] = t.clone().requires_grad_(True)  # (r, n_in)
            else:
                self.b[base] = t.clone().requires_grad_(True)  # (n_out, r)

    def params(self):
        return [self.a[k] for k in sorted(self.a)] + [self.b[k] for k in sorted(self.b)]


def linear(W, name, x, lora):
    y = x @ W[name].T
    if lora is not None and name in lora.a:
        A, B = lora.a[name], lora.b[name]
        s = lora.alpha / A.shape[0]
        y = y + s * (x @ A.T) @ B.T
    return y


def forward_logits(cfg, W, lora, tokens, seg_start, pos):
    T = tokens.shape[0]
    E, H, HK, D = cfg.n_embd, cfg.n_head, cfg.n_head_kv, cfg.head_dim
    ff = W.get('rope_freqs.weight')
    x = W['token_embd.weight'][tokens] * cfg.embd_scale
    for il in range(cfg.n_layer):
        p = 'blk.%d.' % il
        h = rms_norm(x, W[p + 'attn_norm.weight'], cfg.eps)
        if p + 'attn_qkv.weight' in W:
            qkv = linear(W, p + 'attn_qkv.weight', h, lora)
            q, k, v = qkv[:, :H * D], qkv[:, H * D:(H + HK) * D], qkv[:, (H + HK) * D:]
        else:
            q = linear(W, p + 'attn_q.weight', h, lora)
            k = linear(W, p + 'attn_k.weight', h, lora)
            v = linear(W, p + 'attn_v.weight', h, lora)
        if p + 'attn_q.bias' in W:
            q = q + W[p + 'attn_q.bias']
            k = k + W[p + 'attn_k.bias']
            v = v + W[p + 'attn_v.bias']
        q = rope(q.reshape(T, H, D), pos, cfg, ff)
        k = rope(k.reshape(T, HK, D), pos, cfg, ff)
        v = v.reshape(T, HK, D)
        att = attention(q, k, v, cfg, il, seg_start).reshape(T, H * D)
        o = linear(W, p + 'attn_output.weight', att, lora)
        if cfg.post_norms:
            o = rms_norm(o, W[p + 'post_attention_norm.weight'], cfg.eps)
        x = x + o
        h = rms_norm(x, W[p + 'ffn_norm.weight'], cfg.eps)
        if p + 'ffn_gate.weight' in W:
            g = linear(W, p + 'ffn_gate.weight', h, lora)
            u = linear(W, p + 'ffn_up.weight', h, lora)
        else:
            gu = linear(W, p + 'ffn_up.weight', h, lora)
            g, u = gu[:, :gu.shape[1] // 2], gu[:, gu.shape[1] // 2:]
        if cfg.gelu:
            a = torch.nn.functional.gelu(g, approximate='tanh') * u
        else:
            a = torch.nn.functional.silu(g) * u
        d = linear(W, p + 'ffn_down.weight', a, lora)
        if cfg.post_norms:
            d = rms_norm(d, W[p + 'post_ffw_norm.weight'], cfg.eps)
        x = x + d
    h = rms_norm(x, W['output_norm.weight'], cfg.eps)
    out_w = W['output.weight'] if 'output.weight' in W else W['token_embd.weight']
    logits = h @ out_w.T
    if cfg.final_softcap > 0:
        logits = cfg.final_softcap * torch.tanh(logits / cfg.final_softcap)
    return logits


def forward_loss(cfg, W, lora, tokens, targets, seg_start, pos):
    logits = forward_logits(cfg, W, lora, tokens, seg_start, pos)
    mask = targets >= 0
    logp = torch.log_softmax(logits[mask], -1)
    return -logp.gather(1, targets[mask][:, None]).sum(), int(mask.sum())


def rel_err(a, b):
    return float(torch.linalg.norm(a - b) / max(float(torch.linalg.norm(b)), 1e-30))


def check_steps(our_losses, ref_losses):
    ok = True
    for i, (a, b) in enumerate(zip(our_losses, ref_losses)):
        e = abs(a - b) / abs(b)
        print('step %d: torch %.8f pocketlm %.8f rel %.2e' % (i, b, a, e))
        ok &= e <= 1e-4
    if ref_losses[-1] >= ref_losses[0]:
        print('the reference loss did not decrease; the test data is not exercising the optimizer')
        ok = False
    return ok


def main_full(cfg, W, rkv, rt, seq):
    ok = True
    trainable = {k: v.clone().requires_grad_(True) for k, v in W.items() if k != 'rope_freqs.weight'}
    Wt = dict(W, **trainable)
    loss_sum, n = forward_loss(cfg, Wt, None, *seq)
    loss = loss_sum / n
    loss.backward()
    e = abs(rkv['test.loss'] - float(loss)) / abs(float(loss))
    print('loss: torch %.8f pocketlm %.8f rel %.2e (limit 1e-4)' % (float(loss), rkv['test.loss'], e))
    ok &= e <= 1e-4
    worst = 0.0
    for name, t in sorted(trainable.items()):
        g_ours = rt['grad.' + name]
        e = rel_err(g_ours, t.grad.reshape(g_ours.shape))
        worst = max(worst, e)
        if e > 1e-3:
            print('  %s gradient rel %.2e > 1e-3' % (name, e))
            ok = False
    print('weight gradients: %d tensors, worst relative L2 error %.2e (limit 1e-3)' % (len(trainable), worst))
    trainable = {k: v.clone().requires_grad_(True) for k, v in W.items() if k != 'rope_freqs.weight'}
    Wt = dict(W, **trainable)
    groups = [{'params': [v for v in trainable.values() if v.dim() == 2], 'weight_decay': rkv['test.weight_decay']},
              {'params': [v for v in trainable.values() if v.dim() < 2], 'weight_decay': 0.0}]
    opt = torch.optim.AdamW(groups, lr=rkv['test.lr'], betas=(0.9, 0.999), eps=1e-8)
    ref_losses = []
    for _ in range(5):
        opt.zero_grad()
        loss_sum, n = forward_loss(cfg, Wt, None, *seq)
        (loss_sum / n).backward()
        ref_losses.append(float(loss_sum / n))
        opt.step()
    ok &= check_steps(rkv['test.step_losses'], ref_losses)
    print('PASS' if ok else 'FAIL')
    return 0 if ok else 1


def distill_loss(logits, targets, teacher, w, temp, k):
    """Summed over the positions with a target: (1 - w) CE + w T^2 KL(p || q), q = softmax(z / T); with k > 0 the
    teacher keeps k tokens (ids) and a rest mass, and the student's rest bucket is its mass outside those ids."""
    mask = targets >= 0
    z = logits[mask]
    ce = -torch.log_softmax(z, -1).gather(1, targets[mask][:, None])[:, 0]
    lq = torch.log_softmax(z / temp, -1)
    lp = teacher['teacher.logp'][mask]
    if k == 0:
        kl = (torch.exp(lp) * (lp - lq)).sum(-1)
    else:
        ids = teacher['teacher.ids'][mask].long()
        rest = teacher['teacher.rest'][mask]
        kl = (torch.exp(lp) * (lp - lq.gather(1, ids))).sum(-1)
        log_q_rest = torch.logsumexp(lq.scatter(1, ids, float('-inf')), -1)
        kl = kl + torch.where(rest > 0, rest * (torch.log(rest.clamp(min=1e-300)) - log_q_rest), torch.zeros_like(rest))
    return ((1 - w) * ce + w * temp * temp * kl).sum(), int(mask.sum())


def main_distill(cfg, W, akv, at, rkv, rt, dump, seq):
    tkv, teacher = read_gguf(dump + '/teacher.gguf')
    w, temp, k = rkv['test.distill_weight'], rkv['test.distill_temp'], rkv['test.distill_topk']
    tokens, targets, seg_start, pos = seq
    lora = Lora(akv, at)
    logits = forward_logits(cfg, W, lora, tokens, seg_start, pos)
    loss_sum, n = distill_loss(logits, targets, teacher, w, temp, k)
    loss = loss_sum / n
    loss.backward()
    ok = True
    e = abs(rkv['test.loss'] - float(loss)) / abs(float(loss))
    print('distill (w %g, T %g, top-k %d) loss: torch %.8f pocketlm %.8f rel %.2e (limit 1e-4)' %
          (w, temp, k, float(loss), rkv['test.loss'], e))
    ok &= e <= 1e-4
    worst = 0.0
    for name in sorted(lora.a):
        for kind, t in (('lora_a', lora.a[name]), ('lora_b', lora.b[name])):
            g_ours = rt['grad.' + name + '.' + kind]
            e = rel_err(g_ours, t.grad.reshape(g_ours.shape))
            worst = max(worst, e)
            if e > 1e-3:
                print('  %s.%s gradient rel %.2e > 1e-3' % (name, kind, e))
                ok = False
    print('LoRA gradients: %d tensors, worst relative L2 error %.2e (limit 1e-3)' % (2 * len(lora.a), worst))
    print('PASS' if ok else 'FAIL')
    return 0 if ok else 1


def main():
    base_path, dump = sys.argv[1], sys.argv[2]
    kv, W = read_gguf(base_path)
    cfg = Config(kv)
    akv, at = read_gguf(dump + '/adapter.gguf')
    rkv, rt = read_gguf(dump + '/result.gguf')
    with open(dump + '/seq.bin', 'rb') as f:
        T, = struct.unpack('<i', f.read(4))
        arr = np.frombuffer(f.read(16 * T), dtype='<i4').reshape(4, T).astype(np.int64)
    tokens, targets, seg_start, pos = (torch.tensor(a) for a in arr)
    if len(sys.argv) > 3 and sys.argv[3] == 'full':
        return main_full(cfg, W, rkv, rt, (tokens, targets, seg_start, pos))
    if len(sys.argv) > 3 and sys.argv[3].startswith('distill'):
        return main_distill(cfg, W, akv, at, rkv, rt, dump, (tokens, targets, seg_start, pos))

    ok = True
    lora = Lora(akv, at)
    loss_sum, n = forward_loss(cfg, W, lora, tokens, targets, seg_start, pos)
    loss = loss_sum / n
    loss.backward()
    ours = rkv['test.loss']
    e = abs(ours - float(loss)) / abs(float(loss))
    print('loss: torch %.8f pocketlm %.8f rel %.2e (limit 1e-4)' % (float(loss), ours, e))
    ok &= e <= 1e-4
    worst = 0.0
    for name in sorted(lora.a):
        for kind, t in (('lora_a', lora.a[name]), ('lora_b', lora.b[name])):
            g_ours = rt['grad.' + name + '.' + kind]
            g_ref = t.grad.reshape(g_ours.shape)
            e = rel_err(g_ours, g_ref)
            worst = max(worst, e)
            if e > 1e-3:
                print('  %s.%s gradient rel %.2e > 1e-3' % (name, kind, e))
                ok = False
    print('LoRA gradients: %d tensors, worst relative L2 error %.2e (limit 1e-3)' % (2 * len(lora.a), worst))

    # Five AdamW steps with the same hyper-parameters (constant lr, no clipping, weight decay on A and B).
    lora = Lora(akv, at)
    opt = torch.optim.AdamW(lora.params(), lr=rkv['test.lr'], betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=rkv['test.weight_decay'])
    ref_losses = []
    for _ in range(5):
        opt.zero_grad()
        loss_sum, n = forward_loss(cfg, W, lora, tokens, targets, seg_start, pos)
        (loss_sum / n).backward()
        ref_losses.append(float(loss_sum / n))
        opt.step()
    ok &= check_steps(rkv['test.step_losses'], ref_losses)
    print('PASS' if ok else 'FAIL')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
