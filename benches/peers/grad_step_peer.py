"""PyTorch peer of tandem's `grad_step` benchmark: the same three steps, same shapes, same MiniLM
weights, on the CPU, fp32.

    python benches/peers/grad_step_peer.py --assets assets --threads 2 --json out.json

Each step: forward through the frozen encoder (weights with requires_grad=False, so autograd
computes input gradients only), cross-entropy, backward, clip_grad_norm_(1.0), AdamW
(betas 0.9/0.999, eps 1e-8, no weight decay) on the prompt (and head). Timing: 3 warm-up steps,
then the median of N timed steps (CPU tensors are synchronous).
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tokenizers import Tokenizer

BATCH, TEXT_TOKENS, PROMPT_LEN = 32, 30, 8


def synthetic_tokens():
    return [[1996 + ((i * 7919 + j * 104729) % 27616) for j in range(TEXT_TOKENS)] for i in range(BATCH)]


class Encoder:
    """HF BERT (post-LN, exact GELU) from safetensors; frozen tensors."""

    def __init__(self, path):
        w = load_file(path)
        self.w = {k: v.float().requires_grad_(False) for k, v in w.items()}
        self.layers = sum(1 for k in w if k.endswith("attention.self.query.weight"))
        self.d = w["embeddings.word_embeddings.weight"].shape[1]
        self.heads = 12
        self.pos_type = self.w["embeddings.position_embeddings.weight"] + self.w["embeddings.token_type_embeddings.weight"][0]

    def embed_tokens(self, ids):
        return self.w["embeddings.word_embeddings.weight"][ids]

    def forward(self, x, mask):
        w, B, T, d, H = self.w, x.shape[0], x.shape[1], self.d, self.heads
        x = F.layer_norm(x + self.pos_type[:T], (d,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], 1e-12)
        bias = (1.0 - mask)[:, None, None, :] * -1e4
        lin = lambda y, p: F.linear(y, w[p + ".weight"], w[p + ".bias"])
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            heads = lambda y: y.view(B, T, H, d // H).transpose(1, 2)
            q, k, v = (heads(lin(x, p + "attention.self." + n)) for n in ("query", "key", "value"))
            s = q @ k.transpose(-1, -2) / math.sqrt(d // H) + bias
            ctx = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, d)
            x = F.layer_norm(lin(ctx, p + "attention.output.dense") + x, (d,),
                             w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], 1e-12)
            ff = lin(F.gelu(lin(x, p + "intermediate.dense")), p + "output.dense")
            x = F.layer_norm(ff + x, (d,), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], 1e-12)
        return x

    @staticmethod
    def mean_pool(h, mask):
        return (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1e-9)


def with_prompt(enc, prompt, seqs, cls, sep):
    """[CLS] prompt seq [SEP], padded; prompt rows spliced in as word-level embeddings."""
    L = prompt.shape[0]
    T = max(len(s) for s in seqs) + L + 2
    ids = torch.zeros(len(seqs), T, dtype=torch.long)
    mask = torch.zeros(len(seqs), T)
    for r, s in enumerate(seqs):
        ids[r, 0] = cls
        ids[r, 1 + L: 1 + L + len(s)] = torch.tensor(s)
        ids[r, 1 + L + len(s)] = sep
        mask[r, : L + len(s) + 2] = 1
    tok = enc.embed_tokens(ids)
    x = torch.cat([tok[:, :1], prompt.unsqueeze(0).expand(len(seqs), -1, -1), tok[:, 1 + L:]], 1)
    return Encoder.mean_pool(enc.forward(x, mask), mask)


def plain(enc, seqs, cls, sep):
    T = max(len(s) for s in seqs) + 2
    ids = torch.zeros(len(seqs), T, dtype=torch.long)
    mask = torch.zeros(len(seqs), T)
    for r, s in enumerate(seqs):
        ids[r, : len(s) + 2] = torch.tensor([cls] + s + [sep])
        mask[r, : len(s) + 2] = 1
    return Encoder.mean_pool(enc.forward(enc.embed_tokens(ids), mask), mask)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", default="assets")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    enc = Encoder(f"{a.assets}/minilm/model.safetensors")
    tok = Tokenizer.from_file(f"{a.assets}/minilm/tokenizer.json")
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    classes = [tok.encode(c, add_special_tokens=False).ids for c in ("negative", "positive")]
    seqs = synthetic_tokens()
    labels = torch.tensor([i % 2 for i in range(BATCH)])
    init = tok.encode("this movie review is", add_special_tokens=False).ids
    init = [init[i % len(init)] for i in range(PROMPT_LEN)]
    with torch.no_grad():
        cached = F.normalize(plain(enc, seqs, cls, sep), dim=-1)

    def make(kind):
        prompt = enc.embed_tokens(torch.tensor(init)).clone().requires_grad_(True)
        params = [prompt]
        head = None
        if kind == "input_head":
            head = torch.nn.Linear(enc.d, 2)
            params += list(head.parameters())
        opt = torch.optim.AdamW(params, lr=3e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

        def step():
            if kind == "input_head":
                logits = head(with_prompt(enc, prompt, seqs, cls, sep))
            else:
                if kind == "class_prompt_cached":
                    samples = cached
                else:
                    with torch.no_grad():
                        samples = F.normalize(plain(enc, seqs, cls, sep), dim=-1)
                cemb = F.normalize(with_prompt(enc, prompt, classes, cls, sep), dim=-1)
                logits = 20.0 * samples @ cemb.T
            loss = F.cross_entropy(logits, labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            return loss.item()

        return step

    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "batch": BATCH, "results": {}}
    for kind in ("class_prompt_cached", "class_prompt_uncached", "input_head"):
        step = make(kind)
        for _ in range(3):
            step()
        times = []
        for _ in range(a.steps):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        out["results"][kind] = {"ms_per_step": med * 1e3, "samples_per_s": BATCH / med}
        print(f"torch/{kind}/b{BATCH}: {med*1e3:.1f} ms/step, {BATCH/med:.1f} samples/s")
    if a.json:
        json.dump(out, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
