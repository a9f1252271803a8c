"""prunecard: measure pruned transformer checkpoints, render their cards, audit claims.

The Python API is `analyze`, `load`, `render_card` and `audit_card` (`analyzer.api`),
with the records and errors; each function is imported on first use, so `import analyzer`
(and `import analyzer.audit`, `import analyzer.publish`) loads neither `analyzer.weights`
nor torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from analyzer.errors import CheckpointError, InputError, OutputError, PrunecardError
from analyzer.records import Analysis, from_dict, load_record, to_dict, write_record

if TYPE_CHECKING:
    from analyzer.api import analyze, audit_card, load, render_card

__version__ = "0.1.0"

__all__ = [
    "Analysis",
    "CheckpointError",
    "InputError",
    "OutputError",
    "PrunecardError",
    "__version__",
    "analyze",
    "audit_card",
    "from_dict",
    "load",
    "load_record",
    "render_card",
    "to_dict",
    "write_record",
]

_LAZY = ("analyze", "audit_card", "load", "render_card")  # from analyzer.api


def __getattr__(name: str) -> Any:
    """The API functions, imported when first asked for (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'analyzer' has no attribute {name!r}")
    value = getattr(importlib.import_module("analyzer.api"), name)
    globals()[name] = value
    return value
