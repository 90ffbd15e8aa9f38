"""PyTorch peer of tandem's decoder gradient step (`tandem bench --only grad_step/verbalizer`):
the same SmolLM2-135M-Instruct weights (the GGUF's, dequantized to fp32 by the `gguf` package),
the same batch and the same optimizer.

    TANDEM_BENCH_DECODER_BATCH=/tmp/batch.json tandem bench --only grad_step/verbalizer/ ...
    python benches/peers/decoder_step_peer.py --assets assets --batch /tmp/batch.json \
        --threads 2 --json out.json

The batch file is written by tandem's set-up of the step: the initial prompt rows (`[L, d]`),
each example's tokens after the prompt (input ⊕ cue), the class words' first tokens, the labels
and AdamW's settings. Each step: the prompt rows ⊕ each example's token embeddings, right-padded
with id 0 (causal attention keeps padding out of every real row), through the frozen decoder
(HF Llama layout: RMSNorm, rotary attention with rotate-half, grouped-query attention by
`scaled_dot_product_attention`, SwiGLU), the final norm at each sequence's last real row, the
output head's rows of the class words, cross-entropy, backward to the prompt,
clip_grad_norm_, AdamW. Timing: `grad_step_peer.time_steps` (3 warm-up steps, the median of N).
"""
import argparse
import json

import gguf
import numpy as np
import torch
import torch.nn.functional as F

from grad_step_peer import time_steps  # the same timing as the encoder steps' peer


def gguf_weights(path):
    """Dequantized fp32 tensors and the llama hyper-parameters of a GGUF file."""
    r = gguf.GGUFReader(path)
    w = {t.name: torch.from_numpy(gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32))
         for t in r.tensors}
    f = lambda k: r.fields[k].parts[r.fields[k].data[0]][0]
    cfg = dict(layers=int(f("llama.block_count")), heads=int(f("llama.attention.head_count")),
               kv=int(f("llama.attention.head_count_kv")),
               eps=float(f("llama.attention.layer_norm_rms_epsilon")),
               base=float(f("llama.rope.freq_base")))
    return w, cfg


def rotate_half_rows(w, heads):
    """llama.cpp stores each head's query/key rows in rotary pairs (2i, 2i+1); HF's rotate-half
    takes (i, i + hd/2): the same rows reordered, so attention scores are unchanged."""
    out, d = w.shape
    hd = out // heads
    order = torch.cat([torch.arange(0, hd, 2), torch.arange(1, hd, 2)])
    return w.view(heads, hd, d)[:, order].reshape(out, d)


class Decoder:
    """Frozen SmolLM2 (llama) forward in fp32, weights without gradients."""

    def __init__(self, w, cfg):
        self.cfg, p = cfg, "blk.{}."
        self.embed = w["token_embd.weight"]
        self.output = w.get("output.weight", self.embed)  # tied unless the file has its own
        self.norm = w["output_norm.weight"]
        self.layers = []
        for i in range(cfg["layers"]):
            g = lambda n: w[p.format(i) + n]
            self.layers.append(dict(
                attn_norm=g("attn_norm.weight"), ffn_norm=g("ffn_norm.weight"),
                q=rotate_half_rows(g("attn_q.weight"), cfg["heads"]),
                k=rotate_half_rows(g("attn_k.weight"), cfg["kv"]),
                v=g("attn_v.weight"), o=g("attn_output.weight"),
                gate=g("ffn_gate.weight"), up=g("ffn_up.weight"), down=g("ffn_down.weight")))
        self.d = self.embed.shape[1]
        self.hd = self.d // cfg["heads"]

    def rotary(self, t):
        inv = self.cfg["base"] ** (-torch.arange(0, self.hd, 2, dtype=torch.float64) / self.hd)
        ang = torch.arange(t, dtype=torch.float64)[:, None] * inv[None, :]
        ang = torch.cat([ang, ang], -1)
        return ang.cos().float(), ang.sin().float()

    def forward(self, x):
        b, t, d = x.shape
        nh, nkv, hd, eps = self.cfg["heads"], self.cfg["kv"], self.hd, self.cfg["eps"]
        cos, sin = self.rotary(t)
        rope = lambda y: y * cos + torch.cat([-y[..., hd // 2:], y[..., : hd // 2]], -1) * sin
        for l in self.layers:
            h = F.rms_norm(x, (d,), l["attn_norm"], eps)
            q = rope(F.linear(h, l["q"]).view(b, t, nh, hd).transpose(1, 2))
            k = rope(F.linear(h, l["k"]).view(b, t, nkv, hd).transpose(1, 2))
            v = F.linear(h, l["v"]).view(b, t, nkv, hd).transpose(1, 2)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            x = x + F.linear(a.transpose(1, 2).reshape(b, t, d), l["o"])
            h = F.rms_norm(x, (d,), l["ffn_norm"], eps)
            x = x + F.linear(F.silu(F.linear(h, l["gate"])) * F.linear(h, l["up"]), l["down"])
        return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", default="assets")
    ap.add_argument("--gguf", help="default: ASSETS/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--batch", required=True, help="the JSON tandem writes (TANDEM_BENCH_DECODER_BATCH)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    w, cfg = gguf_weights(a.gguf or f"{a.assets}/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    dec = Decoder(w, cfg)
    batch = json.load(open(a.batch))
    tails, n = batch["tails"], len(batch["tails"])
    L = batch["prompt_len"]
    t = max(len(s) for s in tails)
    ids = torch.tensor([s + [0] * (t - len(s)) for s in tails])
    last = torch.tensor([L + len(s) - 1 for s in tails])
    labels = torch.tensor(batch["labels"])
    head = dec.output[batch["verbalizers"]]  # the output head's rows of the class words: [C, d]
    tokens = dec.embed[ids]
    prompt = torch.tensor(batch["prompt"]).view(L, dec.d).requires_grad_(True)
    opt = torch.optim.AdamW([prompt], lr=batch["lr"], betas=tuple(batch["betas"]),
                            eps=batch["eps"], weight_decay=batch["weight_decay"])

    def step():
        x = torch.cat([prompt.unsqueeze(0).expand(n, -1, -1), tokens], 1)
        h = dec.forward(x)[torch.arange(n), last]
        logits = F.linear(F.rms_norm(h, (dec.d,), dec.norm, cfg["eps"]), head)
        loss = F.cross_entropy(logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if batch["grad_clip"] is not None:
            torch.nn.utils.clip_grad_norm_([prompt], batch["grad_clip"])
        opt.step()
        return loss.item()

    row = time_steps(step, a.steps, n)
    med, first_loss = row["ms_per_step"] / 1e3, row["first_loss"]
    print(f"torch-cpu-fp32/grad_step/verbalizer/smollm2/b{n}: {med*1e3:.2f} ms/step, "
          f"{n/med:.2f} samples/s, first loss {first_loss:.6f}")
    if a.json:
        out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "batch": n,
               "model": "smollm2", "device": "cpu", "precision": "fp32",
               "results": {"verbalizer": row}}
        json.dump(out, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
