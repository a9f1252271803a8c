"""Reading checkpoints and measuring their weights (no torch models built here)."""
