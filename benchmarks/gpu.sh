#!/usr/bin/env bash
# Every GPU benchmark of issues 4, 11 and 22 in one go (issues 4 and 11: about 5 minutes on an
# H100/H200; llm_2of4.py has not run on a GPU yet):
#   gpu_bench.py  dense vs packed BERT-large (reference structure), fp16, seq 384, batches
#                 1-256: alignment 1/64/128, fused runtime, CUDA graphs, a kernel profile
#   gpu_eval.py   SQuAD v2 through the packed model (graphs on/off, `prunecard eval` whole),
#                 and prunecard vs transformers 4.57's QA pipeline (with REFERENCE_SITE)
#   llm_2of4.py   issue 22: 2:4 semi-structured sparse vs dense linear layers, two Llama-7B
#                 layers (hidden 4096, intermediate 11008), fp16, 4,096 tokens, per matrix
# Needs torch + transformers already installed; installs nothing. JSON records under $OUT.
#
#   OUT=dir [DATA=squad.json] [REFERENCE_SITE=dir-with-transformers-4.57] bash benchmarks/gpu.sh
#   bash benchmarks/gpu.sh --dry-run                    # the same steps on the CPU, tiny
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-results}"
data="${DATA:-../shared/data/squad_v2_dev_half.json}"
mkdir -p "$out/bench"
export PYTHONPATH=.
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers",
transformers.__version__, "cuda", torch.cuda.is_available())'
if [[ " $* " != *" --dry-run "* ]]; then
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total \
    --format=csv > "$out/nvidia-smi.csv" || true
fi
timeout 270 python3 benchmarks/gpu_bench.py --out "$out/bench" "$@" 2>&1 | tee "$out/gpu_bench.log"
timeout 250 python3 benchmarks/gpu_eval.py --data "$data" --out "$out" \
  ${REFERENCE_SITE:+--reference-site "$REFERENCE_SITE"} "$@" 2>&1 | tee "$out/gpu_eval.log"
timeout 200 python3 benchmarks/llm_2of4.py --out "$out" "$@" 2>&1 | tee "$out/llm_2of4.log"
