"""Runs tandem's criterion `mentor_decode` benchmark and the llama.cpp peer side by side with the
same thread count and prints a Markdown table of decode speed (tokens/s) and the ratio.

    python benches/peers/decode_compare.py [THREADS ...]     # from the repository root; default 1 2

Needs the peer venv with llama-cpp-python==0.3.36 (README §3 has the two pip commands).
"""
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
PY = ROOT / "benches/peers/.venv/bin/python"
TOKENS = 32


def main():
    threads = sys.argv[1:] or ["1", "2"]
    model = pathlib.Path(os.environ.get("TANDEM_ASSETS", ROOT / "assets")) / "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    rows = []
    for t in threads:
        env = dict(os.environ, RAYON_NUM_THREADS=t, OMP_WAIT_POLICY="PASSIVE")
        subprocess.run(["cargo", "bench", "--bench", "tandem", "--", "mentor_decode"], cwd=ROOT, env=env, check=True)
        ours = {}
        for kind in ("quantized_host", "f32_burn"):
            est = ROOT / f"target/criterion/mentor_decode/ndarray_{kind}/{TOKENS}/new/estimates.json"
            ns = json.load(open(est))["mean"]["point_estimate"]
            ours[kind] = TOKENS / (ns / 1e9)
        out = ROOT / f"target/peer_decode_{t}.json"
        subprocess.run([str(PY), str(ROOT / "benches/peers/decode_peer.py"), "--model", str(model),
                        "--threads", t, "--tokens", str(TOKENS), "--json", str(out)], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        peer = json.load(open(out))["tokens_per_s_median"]
        rows.append((t, ours, peer))
    print("\n| threads | tandem quantized host tok/s | tandem f32 burn tok/s | llama.cpp tok/s | ratio (quantized / llama.cpp) | ratio (f32 / llama.cpp) |")
    print("|---|---|---|---|---|---|")
    for t, ours, peer in rows:
        print(f"| {t} | {ours['quantized_host']:.1f} | {ours['f32_burn']:.1f} | {peer:.1f} | "
              f"{ours['quantized_host'] / peer:.2f}x | {ours['f32_burn'] / peer:.2f}x |")


if __name__ == "__main__":
    sys.exit(main())
