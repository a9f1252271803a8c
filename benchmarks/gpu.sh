#!/usr/bin/env bash
# Issue 11's GPU benchmarks in one go (about 5 minutes on an H100/H200): dense vs packed
# BERT-large with the reference structure at fp16, seq 384, batches 1-256, alignment 1 vs
# 64, CUDA graphs on/off. Needs torch + transformers already installed; installs nothing.
#
#   OUT=/some/folder bash benchmarks/gpu.sh            # JSON records under $OUT
#   bash benchmarks/gpu.sh --dry-run                    # the same steps on the CPU, tiny
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-results}"
mkdir -p "$out"
export PYTHONPATH=.
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers",
transformers.__version__, "cuda", torch.cuda.is_available())'
if [[ " $* " != *" --dry-run "* ]]; then
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total \
    --format=csv > "$out/nvidia-smi.csv" || true
fi
timeout 540 python3 benchmarks/gpu_bench.py --out "$out" "$@" 2>&1 | tee "$out/gpu_bench.log"
