"""Runs tandem's criterion `grad_step` benchmark and the PyTorch peer side by side and prints a
Markdown table with the ratio tandem / PyTorch (samples per second).

    python benches/peers/compare.py            # from the repository root

Needs the peer venv (see benches/peers/README.md). Both sides use the same 2 threads.
"""
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
PY = ROOT / "benches/peers/.venv/bin/python"
# (peer kind, criterion id under grad_step/ndarray/)
KINDS = (("class_prompt_cached", "class_prompt/minilm/b32"), ("input_head", "input_head/minilm/b32"))


def main():
    threads = os.environ.get("TANDEM_BENCH_THREADS", "2")
    env = dict(os.environ, RAYON_NUM_THREADS=threads)
    subprocess.run(["cargo", "bench", "--bench", "tandem", "--", "grad_step/ndarray/class_prompt/minilm|grad_step/ndarray/input_head/minilm"], cwd=ROOT, env=env, check=True)
    out = ROOT / "target/peer_grad_step.json"
    subprocess.run([str(PY), str(ROOT / "benches/peers/grad_step_peer.py"), "--assets",
                    os.environ.get("TANDEM_ASSETS", str(ROOT / "assets")), "--threads", threads,
                    "--kinds", ",".join(k for k, _ in KINDS), "--json", str(out)], cwd=ROOT, check=True)
    peer = json.load(open(out))
    print(f"\n| step (batch 32) | tandem ndarray ms | PyTorch {peer['torch']} CPU ms | tandem samples/s | PyTorch samples/s | ratio |")
    print("|---|---|---|---|---|---|")
    for kind, bench in KINDS:
        est = ROOT / f"target/criterion/grad_step/ndarray/{bench}/new/estimates.json"
        ms = json.load(open(est))["mean"]["point_estimate"] / 1e6
        t_sps = 32 / (ms / 1e3)
        p = peer["results"][kind]
        print(f"| {kind} | {ms:.1f} | {p['ms_per_step']:.1f} | {t_sps:.1f} | {p['samples_per_s']:.1f} | {t_sps / p['samples_per_s']:.2f}x |")


if __name__ == "__main__":
    sys.exit(main())
