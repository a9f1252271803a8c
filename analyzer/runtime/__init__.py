"""Torch at run time: packing, timing, fused layers, CUDA graphs, QA inference."""
