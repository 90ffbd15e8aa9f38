"""PyTorch peer of tandem's gradient-step benchmarks (`tandem bench --only grad_step`, criterion
`grad_step`): the same steps, same shapes, same weights.

    python benches/peers/grad_step_peer.py --assets assets --threads 2 --json out.json
    python benches/peers/grad_step_peer.py --model bert_base --device cuda --precision tf32 \
        --weights bert_base.safetensors --kinds class_prompt_cached,input_head --json out.json

Models (as tandem's `BenchModel`): `minilm` (real MiniLM-L6 weights; batch 32, 30 text tokens,
8 prompt vectors) and `bert_base` (768 wide, 12 layers, 12 heads, ff 3072; batch 32, 128 text
tokens, 16 prompt vectors) with random weights: `--save-weights FILE` writes them (seeded, HF
names) so that tandem loads the very same tensors (`TANDEM_BENCH_BERT_BASE=FILE`).

Each step: forward through the frozen encoder (weights with requires_grad=False, so autograd
computes input gradients only), cross-entropy, backward, clip_grad_norm_(1.0), AdamW
(betas 0.9/0.999, eps 1e-8, no weight decay) on the prompt (and head). Precision: `fp32` (TF32
off), `tf32` (TF32 matmuls and convolutions), `bf16` (autocast bf16 forward; fp32 prompt, head
and optimizer state). Timing: 3 warm-up steps, then the median of N timed steps, the device
synchronised before each clock read. On CUDA the peak of torch.cuda.max_memory_allocated is
reported too.
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer

SHAPES = {"minilm": (32, 30, 8), "bert_base": (32, 128, 16)}
BERT_BASE = dict(d=768, layers=12, ff=3072, vocab=30522, positions=512)


def synthetic_tokens(batch, tokens):
    return [[1996 + ((i * 7919 + j * 104729) % 27616) for j in range(tokens)] for i in range(batch)]


def bench_head(d, classes):
    """The input head both sides start from, `[d, classes]` (tandem's `bench_head`): a fixed
    pattern of small weights, so that the first losses can be compared."""
    w = [[0.05 * (((j * 31 + c * 17) % 101) / 50.0 - 1.0) for c in range(classes)] for j in range(d)]
    return torch.tensor(w, dtype=torch.float32)


def random_bert_base(seed=0):
    """BERT-base-sized weights, HF names, N(0, 0.02) matrices, unit LayerNorms."""
    g = torch.Generator().manual_seed(seed)
    c = BERT_BASE
    n = lambda *shape: torch.randn(*shape, generator=g) * 0.02
    w = {
        "embeddings.word_embeddings.weight": n(c["vocab"], c["d"]),
        "embeddings.position_embeddings.weight": n(c["positions"], c["d"]),
        "embeddings.token_type_embeddings.weight": n(2, c["d"]),
        "embeddings.LayerNorm.weight": torch.ones(c["d"]),
        "embeddings.LayerNorm.bias": torch.zeros(c["d"]),
    }
    for i in range(c["layers"]):
        p = f"encoder.layer.{i}."
        for name, (o, i_) in {
            "attention.self.query": (c["d"], c["d"]), "attention.self.key": (c["d"], c["d"]),
            "attention.self.value": (c["d"], c["d"]), "attention.output.dense": (c["d"], c["d"]),
            "intermediate.dense": (c["ff"], c["d"]), "output.dense": (c["d"], c["ff"]),
        }.items():
            w[p + name + ".weight"] = n(o, i_)
            w[p + name + ".bias"] = torch.zeros(o)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[p + ln + ".weight"] = torch.ones(c["d"])
            w[p + ln + ".bias"] = torch.zeros(c["d"])
    return w


class Encoder:
    """HF BERT (post-LN, exact GELU) from safetensors; frozen tensors."""

    def __init__(self, w, device):
        self.w = {k: v.float().to(device).requires_grad_(False) for k, v in w.items()}
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
    dev = prompt.device
    ids = torch.zeros(len(seqs), T, dtype=torch.long)
    mask = torch.zeros(len(seqs), T)
    for r, s in enumerate(seqs):
        ids[r, 0] = cls
        ids[r, 1 + L: 1 + L + len(s)] = torch.tensor(s)
        ids[r, 1 + L + len(s)] = sep
        mask[r, : L + len(s) + 2] = 1
    ids, mask = ids.to(dev), mask.to(dev)
    tok = enc.embed_tokens(ids)
    x = torch.cat([tok[:, :1], prompt.unsqueeze(0).expand(len(seqs), -1, -1), tok[:, 1 + L:]], 1)
    return Encoder.mean_pool(enc.forward(x, mask), mask)


def plain(enc, seqs, cls, sep, dev):
    T = max(len(s) for s in seqs) + 2
    ids = torch.zeros(len(seqs), T, dtype=torch.long)
    mask = torch.zeros(len(seqs), T)
    for r, s in enumerate(seqs):
        ids[r, : len(s) + 2] = torch.tensor([cls] + s + [sep])
        mask[r, : len(s) + 2] = 1
    ids, mask = ids.to(dev), mask.to(dev)
    return Encoder.mean_pool(enc.forward(enc.embed_tokens(ids), mask), mask)


def time_steps(step, steps, batch, sync=None):
    """The first step (its loss and seconds), 2 more warm-up steps, then the median of `steps`
    timed ones (`sync` called before each clock read, e.g. torch.cuda.synchronize)."""
    t0 = time.perf_counter()
    first_loss = step()
    first = time.perf_counter() - t0
    for _ in range(2):
        step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        if sync:
            sync()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return {"ms_per_step": med * 1e3, "samples_per_s": batch / med, "first_iter_s": first,
            "first_loss": first_loss}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", default="assets")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--model", choices=sorted(SHAPES), default="minilm")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", choices=("fp32", "tf32", "bf16"), default="fp32")
    ap.add_argument("--weights", help="bert_base weights (safetensors) to load instead of generating them")
    ap.add_argument("--save-weights", help="write the generated bert_base weights here and exit")
    ap.add_argument("--kinds", default="class_prompt_cached,class_prompt_uncached,input_head")
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.save_weights:
        save_file(random_bert_base(), a.save_weights)
        print(f"wrote {a.save_weights}")
        return
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    torch.backends.cuda.matmul.allow_tf32 = a.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = a.precision == "tf32"
    batch, text_tokens, prompt_len = SHAPES[a.model]
    if a.model == "minilm":
        weights = load_file(f"{a.assets}/minilm/model.safetensors")
    else:
        weights = load_file(a.weights) if a.weights else random_bert_base()
    enc = Encoder(weights, dev)
    tok = Tokenizer.from_file(f"{a.assets}/minilm/tokenizer.json")
    # MiniLM's tokenizer.json pads every encoding to 128: off, so that class names and the init
    # text are their own tokens (tandem's tokenizer does the same).
    tok.no_padding()
    tok.no_truncation()
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    classes = [tok.encode(c, add_special_tokens=False).ids for c in ("negative", "positive")]
    seqs = synthetic_tokens(batch, text_tokens)
    labels = torch.tensor([i % 2 for i in range(batch)], device=dev)
    init = tok.encode("this movie review is", add_special_tokens=False).ids
    init = [init[i % len(init)] for i in range(prompt_len)]
    autocast = torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16")
    with torch.no_grad(), autocast:
        cached = F.normalize(plain(enc, seqs, cls, sep, dev).float(), dim=-1)

    def make(kind):
        prompt = enc.embed_tokens(torch.tensor(init, device=dev)).clone().requires_grad_(True)
        params = [prompt]
        head = None
        if kind == "input_head":
            head = torch.nn.Linear(enc.d, 2).to(dev)
            with torch.no_grad():
                head.weight.copy_(bench_head(enc.d, 2).T)
                head.bias.zero_()
            params += list(head.parameters())
        opt = torch.optim.AdamW(params, lr=3e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

        def step():
            with autocast:
                if kind == "input_head":
                    logits = head(with_prompt(enc, prompt, seqs, cls, sep))
                else:
                    if kind == "class_prompt_cached":
                        samples = cached
                    else:
                        with torch.no_grad():
                            samples = F.normalize(plain(enc, seqs, cls, sep, dev).float(), dim=-1)
                    cemb = F.normalize(with_prompt(enc, prompt, classes, cls, sep).float(), dim=-1)
                    logits = 20.0 * samples @ cemb.T
                loss = F.cross_entropy(logits.float(), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            return loss.item()  # a host read: the device is synchronised

        return step

    label = f"torch-{dev.type}-{a.precision}"
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "batch": batch,
           "model": a.model, "device": a.device, "precision": a.precision, "results": {}}
    for kind in a.kinds.split(","):
        step = make(kind)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        row = time_steps(step, a.steps, batch, torch.cuda.synchronize if cuda else None)
        med, first_loss = row["ms_per_step"] / 1e3, row["first_loss"]
        if cuda:
            row["peak_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
        out["results"][kind] = row
        print(f"{label}/grad_step/{kind}/{a.model}/b{batch}: {med*1e3:.2f} ms/step, {batch/med:.1f} samples/s, first loss {first_loss:.5f}")
    if a.json:
        json.dump(out, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
