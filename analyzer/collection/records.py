"""The collection's records: what each model's folder holds besides the `report` and `audit`
records (`ModelRecord`, the same bytes whichever executor ran it), and the collection.json
summary (`Collection`: every model's status, verdicts, worst mismatches, timings, errors).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "COLLECTION_SCHEMA",
    "DONE",
    "FAILED",
    "KEPT",
    "MODEL_FILE",
    "MODEL_SCHEMA",
    "NOT_RUN",
    "Collection",
    "CollectionOptions",
    "Mismatch",
    "ModelRecord",
    "ModelSummary",
]

COLLECTION_SCHEMA = "prunecard.collection/1"
MODEL_SCHEMA = "prunecard.collection-model/2"  # 2: the figures drawn in the folder
MODEL_FILE = "collection-model.json"  # in each model's folder, written last

DONE, KEPT, FAILED, NOT_RUN = "done", "kept", "failed", "not run"


@dataclass(frozen=True)
class CollectionOptions:
    """What runs for each model; a folder made with other options is made again."""

    audit: bool = False  # audit the model's own card against its weights
    report: bool = False  # `report`'s bench and eval too (quick bench, as `report --quick`)


@dataclass(frozen=True)
class Mismatch:
    """One claim the weights contradict, as the audit found it."""

    quantity: str
    claimed: str
    measured: str
    line: int  # in the card
    text: str  # the card's words


@dataclass(frozen=True)
class ModelRecord:
    """A finished model folder: how it was made, its audit's verdicts, and the sha256 of
    every other file in it (a rerun keeps the folder only if they all still match)."""

    listed: str
    checkpoint: str  # as the records name it (a path, or org/name@commit)
    options: CollectionOptions
    card: str  # the card audited ("" when none was, or the model has none)
    verdicts: dict[str, int]  # audit verdict -> findings; empty when not audited
    worst: tuple[Mismatch, ...]  # the mismatches furthest off, at most three
    files: dict[str, str]  # path in the folder -> sha256
    schema: str = MODEL_SCHEMA


@dataclass(frozen=True)
class ModelSummary:
    """One model in collection.json."""

    listed: str
    status: str  # done, kept (finished by an earlier run), failed, not run (interrupted)
    folder: str = ""  # under DIR/models/; "" when the model has none
    record: ModelRecord | None = None
    error: str = ""
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall seconds
    attempts: int = 0  # times a worker started it (more than one: a worker died)


@dataclass(frozen=True)
class Collection:
    """collection.json: rewritten after every model, so it always says where the run is."""

    list: str  # the LIST file, or `--author ORG`
    options: CollectionOptions
    executor: str  # "serial", "pool of N", "ray at ADDRESS"
    models: tuple[ModelSummary, ...]
    interrupted: bool = False
    seconds: dict[str, float] = field(default_factory=dict)  # models, site, total
    schema: str = COLLECTION_SCHEMA

    def count(self, status: str) -> int:
        return sum(1 for m in self.models if m.status == status)
