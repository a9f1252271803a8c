"""prunecard: measure pruned transformer checkpoints, render their cards, audit claims."""

from analyzer.errors import CheckpointError, InputError, OutputError, PrunecardError
from analyzer.records import Analysis, from_dict, load_record, to_dict, write_record
from analyzer.weights.sparsity import analyze

__version__ = "0.1.0"

__all__ = [
    "Analysis",
    "CheckpointError",
    "InputError",
    "OutputError",
    "PrunecardError",
    "__version__",
    "analyze",
    "from_dict",
    "load_record",
    "to_dict",
    "write_record",
]
