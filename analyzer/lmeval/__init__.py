"""lm-evaluation-harness tasks on a pruned causal LM: options, the run, results import, records."""
