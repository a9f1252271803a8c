"""How far each loader's bf16 (or fp16) model drifts from the fp32 model, at long positions.

A Llama 3.2-1B-geometry checkpoint (its published config.json, rope_type llama3, tied
embeddings, at a small width: hidden 256, 4 layers, vocabulary 4096, context 4096),
random weights stored in the dtype; one random input of `--tokens` tokens. For each
loader the script prints, against the fp32 model (transformers' from_pretrained in fp32),
the largest |logit difference| over the last 100 positions and the share of all positions
whose top-1 token agrees:

- from_pretrained: transformers' own model in the dtype;
- load() new: prunecard's loader now (built under the dtype; rotary inv_freq in fp32);
- load() old: the loader before, which cast the whole model (`.to(dtype)`), inv_freq too.

    python benchmarks/loader_dtype.py [--dtype bfloat16] [--tokens 2048] [--init-std 0.02]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from decoders import build_published, published_config, shrink_config

from analyzer.runtime.packing import load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16"))
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument(
        "--init-std",
        type=float,
        default=0.02,
        help="weights' initializer_range (0.02, transformers' default: near-uniform attention; "
        "larger: sharper attention, where rotary angles matter more)",
    )
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    from transformers import AutoModelForCausalLM

    config = shrink_config(
        published_config("llama-3.2-1b"), head_dim=64, positions=4096, vocab=4096, layers=4
    )
    config["initializer_range"] = args.init_std
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_published(Path(tmp) / "llama", config, dtype=dtype)
        ids = torch.randint(0, 4096, (1, args.tokens), generator=torch.Generator().manual_seed(0))
        models = {
            "from_pretrained": AutoModelForCausalLM.from_pretrained(folder, dtype=dtype),
            "load() new": load(folder, dtype=dtype),
            "load() old": load(folder, dtype=dtype).to(dtype),  # the old loader's final cast
        }
        with torch.inference_mode():
            reference = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
            exact = reference.eval()(input_ids=ids).logits[0]
            print(
                f"Llama 3.2-1B geometry, hidden {config['hidden_size']}, "
                f"{config['num_hidden_layers']} layers, init std {args.init_std}, "
                f"stored {args.dtype}; "
                f"{args.tokens} tokens; against from_pretrained in fp32"
            )
            print(
                f"{'loader':<16} {'inv_freq':<9} {'max |diff| last 100':>20} {'top-1 agrees':>13}"
            )
            for name, model in models.items():
                logits = model.eval()(input_ids=ids).logits[0].float()
                drift = float((logits[-100:] - exact[-100:]).abs().max())
                agree = float((logits.argmax(-1) == exact.argmax(-1)).float().mean())
                rotary = next(b for n, b in model.named_buffers() if n.endswith("inv_freq"))
                print(
                    f"{name:<16} {str(rotary.dtype).removeprefix('torch.'):<9} "
                    f"{drift:>20.4f} {agree:>13.1%}"
                )


if __name__ == "__main__":
    main()
