"""llama.cpp (llama-cpp-python 0.3.36) decode speed on the SmolLM2 GGUF, the peer of tandem's
`mentor_decode` benchmark: greedy, fixed prompt, same thread count, OMP_WAIT_POLICY=PASSIVE.

    OMP_WAIT_POLICY=PASSIVE benches/peers/.venv/bin/python benches/peers/decode_peer.py \
        --model assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --threads 2 --tokens 64 --json out.json
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import llama_cpp.llama_cpp as llama_cpp_c
from llama_cpp import Llama

# llama.cpp's AMX repacking of Q4_1 crashes this build on AMX CPUs; use the ordinary kernels.
_default_params = llama_cpp_c.llama_model_default_params


def _params_without_repack():
    p = _default_params()
    p.use_extra_bufts = False
    return p


llama_cpp_c.llama_model_default_params = _params_without_repack

PROMPT = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
          "<|im_start|>user\nWrite a short poem about the sea.<|im_end|>\n<|im_start|>assistant\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json")
    a = ap.parse_args()
    stderr = os.dup(2)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # llama.cpp's load log
    llm = Llama(model_path=a.model, n_ctx=512, n_threads=a.threads, n_threads_batch=a.threads, verbose=True)
    os.dup2(stderr, 2)
    prompt = llm.tokenize(PROMPT.encode(), add_bos=False, special=True)
    rates = []
    for r in range(a.repeats + 1):
        llm.reset()
        llm.eval(prompt)
        tok = prompt[-1]
        t0 = time.perf_counter()
        for _ in range(a.tokens):
            llm.eval([tok])
            ptr = llama_cpp_c.llama_get_logits_ith(llm._ctx.ctx, -1)
            tok = int(np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).argmax())
        dt = time.perf_counter() - t0
        if r > 0:  # the first run warms up
            rates.append(a.tokens / dt)
    rates.sort()
    res = {"runtime": "llama.cpp (llama-cpp-python 0.3.36)", "threads": a.threads, "tokens": a.tokens,
           "tokens_per_s_median": rates[len(rates) // 2], "tokens_per_s": rates}
    print(json.dumps(res))
    if a.json:
        json.dump(res, open(a.json, "w"))


if __name__ == "__main__":
    sys.exit(main())
