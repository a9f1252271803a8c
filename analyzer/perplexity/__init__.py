"""Perplexity of causal LMs: text in, strided sliding windows, a `Perplexity` record out."""
