"""`load()` gives transformers' own model: every parameter and buffer in the dtype
`from_pretrained` keeps it in (rotary frequencies in fp32 under a bf16 or fp16 model), so
its logits equal `AutoModelForCausalLM.from_pretrained` of the same folder at every
position, near the context length too.

Tolerance: zero. The same modules hold the same tensors in the same dtypes and run the same
kernels, so the logits are the same bits; any dtype difference (inv_freq in bf16, as the old
loader cast it) moves them by far more than one bf16 or fp16 step at long positions.
"""

from __future__ import annotations

import pytest
import torch
from decoders import build_published, published_config, shrink_config

from analyzer.runtime.packing import load

CONTEXT = 4096  # the shrunk model's context length (max_position_embeddings)
LONG = 2100  # tokens of the long input: positions up to 2,099, about half the context


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """Llama 3.2-1B's published geometry (rope_type llama3, tied embeddings) at a tiny
    width, its context shrunk to 4096 positions, nothing pruned; stored in fp32."""
    config = shrink_config(published_config("llama-3.2-1b"), positions=CONTEXT, vocab=512)
    return build_published(tmp_path_factory.mktemp("loader") / "llama", config)


def _ids(length: int) -> torch.Tensor:
    return torch.randint(0, 512, (1, length), generator=torch.Generator().manual_seed(0))


def _from_pretrained(folder, dtype):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).eval()


def _dtypes(model) -> dict[str, torch.dtype]:
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    return {name: t.dtype for name, t in tensors.items()}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_every_tensor_has_the_dtype_from_pretrained_gives_it(llama, dtype):
    ours, theirs = _dtypes(load(llama, dtype=dtype)), _dtypes(_from_pretrained(llama, dtype))
    assert ours == theirs
    rotary = [name for name in ours if name.endswith("inv_freq")]
    assert rotary and all(ours[name] == torch.float32 for name in rotary)


@pytest.mark.parametrize("layout", ["stored", "packed"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("length", [16, LONG])
def test_logits_equal_from_pretrained_at_every_position(llama, dtype, layout, length):
    """Short and long inputs; "packed" of a model with nothing to remove is the same model."""
    ids = _ids(length)
    with torch.inference_mode():
        ours = load(llama, dtype=dtype, layout=layout)(input_ids=ids).logits
        theirs = _from_pretrained(llama, dtype)(input_ids=ids).logits
    assert ours.dtype == theirs.dtype == dtype
    assert torch.equal(ours, theirs)


def test_a_stored_dtype_is_the_default_as_in_from_pretrained(tmp_path):
    """A bf16 checkpoint loads in bf16 (the dtype config.json and the weights state), with
    the same logits as from_pretrained's default ("auto") load of it."""
    config = shrink_config(published_config("llama-3.2-1b"), positions=CONTEXT, vocab=512)
    folder = build_published(tmp_path / "bf16", config, dtype=torch.bfloat16)
    from transformers import AutoModelForCausalLM

    ids = _ids(LONG)
    with torch.inference_mode():
        ours = load(folder)(input_ids=ids).logits
        theirs = AutoModelForCausalLM.from_pretrained(folder).eval()(input_ids=ids).logits
    assert ours.dtype == torch.bfloat16
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize(
    "name", ["gemma-2-2b", "qwen2.5-0.5b", "phi-3-mini-4k-instruct", "mistral-7b-v0.1"]
)
def test_other_published_geometries_load_as_from_pretrained_does(name, tmp_path):
    """Gemma 2 (embedding normalizer, soft-capping), Qwen2.5 (biases, tied), Phi-3 (fused
    projections), Mistral (sliding window) stored in bf16: same dtypes, same logits."""
    config = shrink_config(published_config(name), positions=CONTEXT, vocab=512)
    folder = build_published(tmp_path / name, config, dtype=torch.bfloat16)
    ours, theirs = load(folder), _from_pretrained(folder, torch.bfloat16)
    assert _dtypes(ours) == _dtypes(theirs)
    ids = _ids(300)
    with torch.inference_mode():
        assert torch.equal(ours(input_ids=ids).logits, theirs(input_ids=ids).logits)
