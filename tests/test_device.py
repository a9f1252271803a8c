"""One device picker for bench, eval and QA: defaults to the GPU torch sees, and a device
torch cannot use is a one-line input error before any model loads."""

from __future__ import annotations

import pytest
import torch

from analyzer.errors import InputError
from analyzer.runtime.bench import resolve_options
from analyzer.runtime.environment import pick_device
from analyzer.runtime.qa import answer_batch


@pytest.mark.parametrize("gpu", [True, False])
def test_the_default_is_the_gpu_when_torch_sees_one(monkeypatch, gpu):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    assert pick_device(None) == ("cuda" if gpu else "cpu")
    assert pick_device("cpu") == "cpu"
    assert resolve_options(None, None, None)[0] == pick_device(None)


def test_cuda_without_a_gpu_is_an_input_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:1"):
        with pytest.raises(InputError, match="no CUDA device"):
            pick_device(device)


@pytest.mark.parametrize("device", ["gpu", "CPU", "cuda:", "mps", ""])
def test_an_unknown_device_is_an_input_error_everywhere(device):
    with pytest.raises(InputError, match="--device must be cpu or cuda"):
        pick_device(device)
    with pytest.raises(InputError, match="--device must be cpu or cuda"):
        resolve_options(device, None, None)
    # the QA loop used to hand any string to torch
    with pytest.raises(InputError, match="--device must be cpu or cuda"):
        answer_batch(None, None, ["q"], ["c"], device=device)
