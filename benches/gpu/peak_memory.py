"""Runs a command and reports its peak memory: GPU memory of its process tree as nvidia-smi
sees it (polled every 50 ms; the same method for tandem and PyTorch, CUDA context included),
or with --host the peak resident memory of the process tree (polled from /proc).

    python benches/gpu/peak_memory.py [--host] --json OUT.json -- CMD ARGS...
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time


def tree(pid):
    pids, frontier = {pid}, [pid]
    while frontier:
        p = frontier.pop()
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            kids = []
        for k in kids:
            if k not in pids:
                pids.add(k)
                frontier.append(k)
    return pids


def gpu_mib(pids):
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    total = 0
    for line in out.splitlines():
        parts = [x.strip() for x in line.split(",")]
        if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) in pids:
            total += int(parts[1])
    return total


def rss_mib(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", action="store_true")
    ap.add_argument("--json", required=True)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    proc = subprocess.Popen(cmd)
    peak = {"mib": 0.0}
    done = threading.Event()

    def poll():
        while not done.is_set():
            pids = tree(proc.pid)
            m = rss_mib(pids) if a.host else gpu_mib(pids)
            if m is not None:
                peak["mib"] = max(peak["mib"], m)
            time.sleep(0.05)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    code = proc.wait()
    done.set()
    t.join()
    kind = "host RSS" if a.host else "GPU (nvidia-smi)"
    json.dump({"peak_mib": peak["mib"], "kind": kind, "cmd": cmd, "status": code}, open(a.json, "w"))
    print(f"peak {kind} memory: {peak['mib']:.0f} MiB", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
