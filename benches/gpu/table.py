"""Merges the JSON files of benches/gpu/run.sh into one Markdown table: per workload, tandem's
samples/s and ms/step per backend, PyTorch's per precision, the ratio tandem / PyTorch, first
losses (same weights: they must agree) and peak memory per process.

    python benches/gpu/table.py OUT_DIR
"""
import glob
import json
import os
import sys

PEER_KIND = {"class_prompt": "class_prompt_cached", "class_prompt_generic": "class_prompt_cached",
             "input_head": "input_head", "input_head_generic": "input_head",
             "verbalizer": "verbalizer", "verbalizer_generic": "verbalizer"}


def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None


def main(out):
    tandem = {}
    for path in sorted(glob.glob(os.path.join(out, "tandem_*.json"))):
        for m in load(path) or []:
            tandem.setdefault(m["backend"], {})[m["id"].split("/", 1)[1]] = m
    torch = {}
    for path in sorted(glob.glob(os.path.join(out, "torch_*_*.json"))):
        d = load(path)
        if d:
            torch.setdefault(d["precision"], {})[d["model"]] = d
    mem = {os.path.basename(p)[4:-5]: load(p) for p in glob.glob(os.path.join(out, "mem_*.json"))}
    any_torch = next((m for p in torch.values() for m in p.values()), None)
    if any_torch:
        print(f"PyTorch {any_torch['torch']} on {any_torch['device']}\n")
    workloads = sorted({w for b in tandem.values() for w in b})
    print("| workload | side | precision | ms / step | samples / s | tandem ÷ this | first loss |")
    print("|---|---|---|---|---|---|---|")
    for w in workloads:
        _, readout, model, batch = w.split("/")
        for backend, rows in tandem.items():
            m = rows.get(w)
            if not m:
                continue
            print(f"| {w} | tandem {backend} | fp32 | {m['median_ms']:.2f} | {m['throughput']:.1f} | 1.00× | {m.get('first_loss') or float('nan'):.5f} |")
        best = max((r[w]['throughput'] for r in tandem.values() if w in r), default=None)
        for prec, models in torch.items():
            d = models.get(model)
            r = d and d["results"].get(PEER_KIND[readout])
            if not r:
                continue
            ratio = f"{best / r['samples_per_s']:.2f}×" if best else "–"
            print(f"| {w} | torch {d['device']} | {prec} | {r['ms_per_step']:.2f} | {r['samples_per_s']:.1f} | {ratio} | {r['first_loss']:.5f} |")
    print("\n| process | peak memory MiB | measured as |")
    print("|---|---|---|")
    for name, m in sorted(mem.items()):
        if m:
            print(f"| {name} | {m['peak_mib']:.0f} | {m['kind']} |")
    print("\nCold start (first iteration, kernel compilation and autotuning included), seconds:")
    for backend, rows in tandem.items():
        for w, m in rows.items():
            print(f"- tandem {backend} {w}: {m['first_iter_s']:.1f} s (prepare {m['prepare_s']:.1f} s)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/tandem-bench")
