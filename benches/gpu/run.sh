#!/usr/bin/env bash
# One prepared benchmark run: tandem's gradient-step workloads on the GPU backends (cuda, and
# wgpu where Vulkan loads) and the PyTorch peer of the same steps (same shapes, same weights) in
# fp32 with TF32 off, TF32 on and autocast bf16; prints one table (benches/gpu/table.py).
#
#   benches/gpu/run.sh BIN [OUT]           # on a GPU machine, BIN built elsewhere with
#                                          # --features cuda,wgpu (see benches/gpu/README.md)
#   DEVICE=cpu BACKENDS="ndarray flex" benches/gpu/run.sh target/release/tandem   # the CPU table
#
# Environment: ASSETS (default ./assets), PYTHON (default python3), ITERS (20), WARMUP (3),
# DEVICE (cuda), BACKENDS ("cuda wgpu"), PRECISIONS ("fp32 tf32 bf16"; cpu: fp32),
# ONLY (workload id prefixes for tandem, default "grad_step"), MODELS ("minilm bert_base"),
# SKIP_PEER (1: tandem only, e.g. to add a backend to an earlier run's folder).
# On the CPU the decoder step (grad_step/verbalizer) has its peer too: decoder_step_peer.py.
set -uo pipefail
BIN=${1:?usage: run.sh BIN [OUT]}
OUT=${2:-${OUT:-/tmp/tandem-bench}}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ASSETS=${ASSETS:-$ROOT/assets}
PYTHON=${PYTHON:-python3}
ITERS=${ITERS:-20}
WARMUP=${WARMUP:-3}
DEVICE=${DEVICE:-cuda}
if [ "$DEVICE" = cuda ]; then
  BACKENDS=${BACKENDS:-"cuda wgpu"}
  PRECISIONS=${PRECISIONS:-"fp32 tf32 bf16"}
  export CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}
  export LD_LIBRARY_PATH=$CUDA_PATH/lib64:${LD_LIBRARY_PATH:-}
else
  BACKENDS=${BACKENDS:-ndarray}
  PRECISIONS=${PRECISIONS:-fp32}
fi
mkdir -p "$OUT"
export TANDEM_ASSETS=$ASSETS
# Kernel autotune results persist between runs: the cold start is paid once per machine.
export CUBECL_AUTOTUNE_CACHE=${CUBECL_AUTOTUNE_CACHE:-$OUT/cubecl-cache}

# The same BERT-base-sized weights for both sides.
"$PYTHON" "$ROOT/benches/peers/grad_step_peer.py" --save-weights "$OUT/bert_base.safetensors" || exit 1
export TANDEM_BENCH_BERT_BASE=$OUT/bert_base.safetensors
# The decoder step's set-up writes its batch here for its PyTorch peer (CPU, fp32).
export TANDEM_BENCH_DECODER_BATCH=$OUT/decoder_batch.json
rm -f "$TANDEM_BENCH_DECODER_BATCH"

MEM="$PYTHON $ROOT/benches/gpu/peak_memory.py"
[ "$DEVICE" = cuda ] || MEM="$PYTHON $ROOT/benches/gpu/peak_memory.py --host"

for b in $BACKENDS; do
  echo "== tandem $b"
  only=()
  for o in ${ONLY:-grad_step}; do only+=(--only "$o"); done
  timeout "${TANDEM_TIMEOUT:-420}" $MEM --json "$OUT/mem_tandem_$b.json" -- \
    "$BIN" bench --backend "$b" "${only[@]}" --warmup "$WARMUP" --iters "$ITERS" \
    --json "$OUT/tandem_$b.json" || echo "tandem $b failed (status $?)"
done
[ "${SKIP_PEER:-0}" = 1 ] && PRECISIONS=""
for p in $PRECISIONS; do
  for m in ${MODELS:-minilm bert_base}; do
    echo "== torch $DEVICE $p $m"
    timeout 300 $MEM --json "$OUT/mem_torch_${p}_$m.json" -- \
      "$PYTHON" "$ROOT/benches/peers/grad_step_peer.py" --assets "$ASSETS" --device "$DEVICE" \
      --precision "$p" --model "$m" --weights "$OUT/bert_base.safetensors" \
      --threads "${THREADS:-$(nproc)}" --steps "$ITERS" --kinds class_prompt_cached,input_head \
      --json "$OUT/torch_${p}_$m.json" || echo "torch $p $m failed (status $?)"
  done
done
if [ "$DEVICE" = cpu ] && [ -n "$PRECISIONS" ] && [ -f "$TANDEM_BENCH_DECODER_BATCH" ]; then
  echo "== torch cpu fp32 smollm2"
  timeout 600 $MEM --json "$OUT/mem_torch_fp32_smollm2.json" -- \
    "$PYTHON" "$ROOT/benches/peers/decoder_step_peer.py" --assets "$ASSETS" \
    --batch "$TANDEM_BENCH_DECODER_BATCH" --threads "${THREADS:-$(nproc)}" --steps "$ITERS" \
    --json "$OUT/torch_fp32_smollm2.json" || echo "torch smollm2 failed (status $?)"
fi
"$PYTHON" "$ROOT/benches/gpu/table.py" "$OUT" | tee "$OUT/table.md"
