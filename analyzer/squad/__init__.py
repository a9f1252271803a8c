"""SQuAD v2: data, the official metric, evaluation of a model."""
