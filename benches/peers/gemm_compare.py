"""The frozen encoders' matrix products, the `gemm` crate (what burn-flex calls) against torch.mm,
side by side in one command with the same thread count: `tandem bench --only gemm` times every
shape (MiniLM and BERT-base-sized linears at the gradient-step workloads' row counts: x·W with W
stored [K, N]; dy·Wᵀ reading W in place through strides and from a packed copy of Wᵀ), then this process times torch.mm on the same shapes and layouts.
Prints a Markdown table of GFLOP/s and the ratio.

    benches/peers/.venv/bin/python benches/peers/gemm_compare.py BIN [THREADS]   # default 2

Needs the peer venv with torch (README §3 has the two pip commands).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

WIDTH = {"minilm": 384, "bert_base": 768}
LINEAR = {"qkv": (1, 3), "out": (1, 1), "up": (1, 4), "down": (4, 1)}


def shape(bench_id):
    """(M, K, N, transposed) of an id `ndarray/gemm/minilm/m22/qkv/w`."""
    _, _, model, m, linear, direction = bench_id.split("/")
    d = WIDTH[model]
    k, n = (f * d for f in LINEAR[linear])
    return int(m[1:]), k, n, direction.startswith("wt")


def torch_ms(m, k, n, transposed, iters, warmup=2):
    g = torch.Generator().manual_seed(0)
    w = torch.rand(k, n, generator=g) * 2 - 1
    lhs = torch.rand(m, n if transposed else k, generator=g) * 2 - 1
    rhs = w.t() if transposed else w
    out = torch.empty(m, k if transposed else n)
    for _ in range(warmup):
        torch.mm(lhs, rhs, out=out)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        torch.mm(lhs, rhs, out=out)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    binary = sys.argv[1]
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    iters = int(os.environ.get("ITERS", "20"))
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "gemm.json")
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        subprocess.run([binary, "bench", "--backend", "ndarray", "--only", "gemm", "--warmup", "2",
                        "--iters", str(iters), "--json", out], env=env, check=True, stdout=subprocess.DEVNULL)
        ours = json.load(open(out))
    print(f"torch {torch.__version__}, {threads} threads; tandem: the gemm crate on rayon's pool, "
          f"RAYON_NUM_THREADS={threads}; median of {iters}\n")
    print("| shape (model, M, linear, K → N, direction) | gemm crate GFLOP/s | torch.mm GFLOP/s | ratio |")
    print("|---|---|---|---|")
    for row in ours:
        m, k, n, transposed = shape(row["id"])
        flop = 2 * m * k * n
        ms = torch_ms(m, k, n, transposed, iters)
        mine = flop / row["median_ms"] / 1e6
        theirs = flop / ms / 1e6
        _, _, model, _, linear, direction = row["id"].split("/")
        label = {"w": "x·W", "wt": "dy·Wᵀ (W in place)", "wt_packed": "dy·Wᵀ (Wᵀ packed)"}[direction]
        print(f"| {model}, {m}, {linear}, {k} → {n}, {label} | {mine:.1f} | {theirs:.1f} | {mine / theirs:.2f} |")


if __name__ == "__main__":
    main()
