"""The CUDA-graph policy, on the CPU: a stand-in for capture replays the model into the
captured outputs the way a CUDA graph does, so the bookkeeping can be checked anywhere."""

from __future__ import annotations

import torch

import analyzer.runtime.graphs as graphs


class Doubler(torch.nn.Module):
    def forward(self, x):
        return {"y": 2 * x}


class ReplayedGraph:
    """What a CUDA graph does: rerun the captured work on the static inputs, writing into
    the tensors it returned at capture time."""

    def __init__(self, model, static):
        self.model, self.static = model, static
        self.outputs = model(**static)

    def replay(self):
        self.outputs["y"].copy_(self.model(**self.static)["y"])


def test_shapes_are_captured_when_they_come_back_and_replayed_with_new_values(monkeypatch):
    captured = []

    def fake_capture(model, static, pool):
        graph = ReplayedGraph(model, static)
        captured.append(tuple(static["x"].shape))
        return graph, graph.outputs

    monkeypatch.setattr(graphs, "capture", fake_capture)
    monkeypatch.setattr(torch.cuda, "graph_pool_handle", lambda: object())
    forward = graphs.GraphedForward(Doubler())
    first = forward({"x": torch.tensor([1.0, 2.0])})
    assert captured == [] and first["y"].tolist() == [2.0, 4.0]  # seen once: eager
    second = forward({"x": torch.tensor([3.0, 4.0])})
    assert captured == [(2,)] and second["y"].tolist() == [6.0, 8.0]
    third = forward({"x": torch.tensor([5.0, 6.0])})  # replayed on the copied-in values
    assert captured == [(2,)] and third["y"].tolist() == [10.0, 12.0]
    assert third is second  # the graph's own output tensors, refilled
    other = forward({"x": torch.tensor([1.0, 1.0, 1.0])})  # a new shape: eager again
    assert captured == [(2,)] and other["y"].tolist() == [2.0, 2.0, 2.0]
