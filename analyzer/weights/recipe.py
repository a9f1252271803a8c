"""llm-compressor's recipe.yaml: what `oneshot` says it did, read safely and checked against
the weights.

`oneshot` writes the recipe it ran beside the weights. Its shape (llm-compressor 0.14,
`Recipe.from_dict`): stages at the top level, each a mapping of modifier groups, each group
a mapping of modifier type to its arguments; `Recipe.yaml` writes `default_stage:
default_modifiers: {SparseGPTModifier: {...}}`, older recipes name their own stages
(`sparsity_stage: sparsity_modifiers: ...`, `test_stage: obcq_modifiers: ...`, numbered
`_0`, `_1` when recipes were appended), and a group may also be a list of one-entry
mappings. A `*_modifiers` group at the top level is read as the default stage. Other
top-level keys (`version`, `args`, `metadata`) are ignored.

The file is read like every input (a regular file, at most CONFIG_LIMIT bytes) and loaded
by `analyzer.front_matter.load_bounded_yaml` in strict mode: no tags (sparseml's
`!ModifierName` lists included: they would be objects, not data), no aliases or anchors, at
most 64 levels and 1 MiB. A value of the wrong type is one line naming the file, the
modifier and the field.

What is checked, per pruning modifier (SparseGPT, Wanda, magnitude), on the Analysis's
matrices (a module is a 2-D weight's name without `.weight`; `Linear` is every 2-D weight but
the embeddings, plus the lm_head, which is the embedding table when it is tied):

- `pattern`: with an N:M `mask_structure` (2:4, 1:4, 4:8, the ones measured), every targeted
  matrix follows it (a 1:4 matrix is also 2:4; 2:4 and 1:4 are also 4:8);
- `density`: unstructured, every targeted matrix holds 1 - sparsity of its weights, within
  DENSITY_TOLERANCE (SparseGPT and Wanda prune an exact share per row or block);
- `ignored`: the matrices the targets take but `ignore` leaves out keep more than
  1 - sparsity / 2 of their weights (half way between pruned and untouched), unless another
  pruning modifier of the recipe targets them.

Targets follow compressed-tensors' matching (`utils/match.py`): `re:` patterns with
`re.match`, exact module names, and class names; SparseGPT and Wanda target the Linear layers
inside the modules their targets name. Class names other than Linear cannot be seen in the
weights, so a claim resting on one is "unchecked", with the reason; so is a per-layer
sparsity list. Quantization and constant-pruning modifiers are recorded, not checked here.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from analyzer.errors import CheckpointError
from analyzer.records import MatrixStats, Recipe, RecipeCheck, RecipeMatrix, RecipeModifier

__all__ = [
    "DENSITY_TOLERANCE",
    "RECIPE_FILE",
    "check_recipe",
    "parse_recipe",
    "read_recipe",
    "tied_lm_head",
]

RECIPE_FILE = "recipe.yaml"
DENSITY_TOLERANCE = 0.01  # absolute: a 50% recipe accepts densities from 49% to 51%
MAX_PATTERN = 256  # characters of one `re:` target

PRUNING = ("SparseGPTModifier", "WandaPruningModifier", "MagnitudePruningModifier")
# modifiers that prune the Linear layers inside the modules their targets name
_LAYERWISE = ("SparseGPTModifier", "WandaPruningModifier")
_QUANTIZATION = ("QuantizationModifier", "GPTQModifier")
_ALL = ("__ALL__", "__ALL_PRUNABLE__")  # magnitude and constant pruning's "every matrix"
# which measured patterns satisfy a stated N:M (analyzer.weights.patterns names them)
_SATISFIES = {"1:4": ("1:4",), "2:4": ("2:4", "1:4"), "4:8": ("4:8", "2:4", "1:4")}
_NM = re.compile(r"(\d{1,4}):(\d{1,4})")


def read_recipe(root: Path) -> tuple[RecipeModifier, ...] | None:
    """The modifiers of `root`/recipe.yaml, or None when there is none."""
    from analyzer.front_matter import load_bounded_yaml
    from analyzer.inputs import CONFIG_LIMIT, read_input

    path = root / RECIPE_FILE
    if not os.path.lexists(path):
        return None
    raw = read_input(path, CONFIG_LIMIT, CheckpointError)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError(path, "is not UTF-8 text") from None
    return parse_recipe(load_bounded_yaml(text, path, what="recipe", strict=True), path)


def parse_recipe(data: Any, path: Path | str) -> tuple[RecipeModifier, ...]:
    """The modifiers of a loaded recipe, in file order; raises CheckpointError naming
    `path` for any shape llm-compressor would not read."""
    if not isinstance(data, dict):
        raise CheckpointError(path, f"recipe is {_kind(data)}, not a mapping of stages")
    modifiers: list[RecipeModifier] = []
    for key, value in data.items():
        key = str(key)
        if key.endswith("_modifiers"):
            modifiers += _group("default", key, value, path)
        elif isinstance(value, dict) and any(str(k).endswith("_modifiers") for k in value):
            stage = re.sub(r"_stage(_\d+)?$", "", key)
            for group, mods in value.items():
                if str(group).endswith("_modifiers"):
                    modifiers += _group(stage, f"{key}.{group}", mods, path)
    if not modifiers:
        raise CheckpointError(path, "recipe holds no modifiers (no `*_modifiers` group)")
    return tuple(modifiers)


def _group(stage: str, where: str, value: Any, path: Path | str) -> list[RecipeModifier]:
    if isinstance(value, dict):
        entries = list(value.items())
    elif isinstance(value, list) and all(isinstance(v, dict) and len(v) == 1 for v in value):
        entries = [next(iter(v.items())) for v in value]
    else:
        raise CheckpointError(path, f"{where} is {_kind(value)}, not a mapping of modifiers")
    return [_modifier(stage, str(kind), args, path) for kind, args in entries]


def _modifier(stage: str, kind: str, args: Any, path: Path | str) -> RecipeModifier:
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise CheckpointError(path, f"{kind} is {_kind(args)}, not a mapping of arguments")
    field = _Fields(kind, args, path)
    sparsity, note = field.sparsity("final_sparsity" if "final_sparsity" in args else "sparsity")
    return RecipeModifier(
        type=kind,
        stage=stage,
        sparsity=sparsity,
        mask_structure=field.mask_structure(),
        targets=field.names("targets"),
        ignore=field.names("ignore"),
        scheme=field.scheme() if kind in _QUANTIZATION else "",
        note=note,
    )


class _Fields:
    """One modifier's arguments, each checked for the type llm-compressor declares."""

    def __init__(self, kind: str, args: dict, path: Path | str) -> None:
        self.kind, self.args, self.path = kind, args, path

    def _bad(self, name: str, want: str) -> CheckpointError:
        value = repr(self.args[name])
        value = value if len(value) <= 40 else value[:37] + "..."
        return CheckpointError(self.path, f"{self.kind}.{name} must be {want}, not {value}")

    def sparsity(self, name: str) -> tuple[float | None, str]:
        value = self.args.get(name)
        if value is None:
            return None, ""
        if isinstance(value, list) and value and all(_number(v) for v in value):
            return None, f"per-layer {name} ({len(value)} values): not checked"
        if not _number(value) or not 0 <= value <= 1:
            raise self._bad(name, "a number from 0 to 1 (or a list of them)")
        return float(value), ""

    def mask_structure(self) -> str:
        value = self.args.get("mask_structure")
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self._bad("mask_structure", 'a string, "N:M" or "unstructured"')
        if value in ("0:0", "unstructured"):
            return "unstructured"
        match = _NM.fullmatch(value)
        if match is None or not 0 < int(match[1]) <= int(match[2]):
            raise self._bad("mask_structure", '"N:M" with 0 < N <= M, or "unstructured"')
        return value

    def names(self, name: str) -> tuple[str, ...]:
        value = self.args.get(name)
        if value is None:
            return ()
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise self._bad(name, "a module name or a list of them")
        for v in values:
            if v.startswith("re:"):
                _compile(v[3:], f"{self.kind}.{name}", self.path)
        return tuple(values)

    def scheme(self) -> str:
        value = self.args.get("scheme")
        groups = self.args.get("config_groups")
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return ", ".join(value)
        if value is not None:
            raise self._bad("scheme", "a preset name or a mapping of presets to targets")
        if isinstance(groups, dict):
            return "config_groups: " + ", ".join(str(k) for k in groups)
        if groups is not None:
            raise self._bad("config_groups", "a mapping of group names to schemes")
        return ""


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_KINDS: dict[type, str] = {dict: "a mapping", list: "a list", str: "a string"}


def _kind(value: Any) -> str:
    return _KINDS.get(type(value), "a scalar")


def _compile(pattern: str, where: str, path: Path | str) -> re.Pattern[str]:
    """A `re:` target, refused when it could backtrack without end on a module name (a
    repetition inside a repetition or of an alternation: `(a+)+`, `(a|ab)*`)."""
    if len(pattern) > MAX_PATTERN:
        raise CheckpointError(path, f"{where}: a re: pattern over {MAX_PATTERN} characters")
    try:
        compiled = re.compile(pattern)
        nested = _nested_repeat(_parse(pattern))
    except (re.error, RecursionError, OverflowError) as exc:
        raise CheckpointError(path, f"{where}: re:{pattern[:40]} is not a regex ({exc})") from None
    if nested:
        raise CheckpointError(
            path, f"{where}: re:{pattern[:40]} nests repetitions (could run without end)"
        )
    return compiled


def _parse(pattern: str) -> Any:
    if sys.version_info >= (3, 11):
        import re._parser as sre_parse  # type: ignore[import-not-found]  # not in typeshed
    else:  # pragma: no cover - Python 3.10
        import sre_parse
    return sre_parse.parse(pattern)


def _nested_repeat(items: Any, inside: bool = False) -> bool:
    """Whether a parsed pattern repeats a repetition or an alternation."""
    for op, arg in items:
        name = str(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            if inside or _nested_repeat(arg[2], True):
                return True
        elif name == "BRANCH":
            if inside or any(_nested_repeat(b, inside) for b in arg[1]):
                return True
        elif name == "SUBPATTERN" and _nested_repeat(arg[-1], inside):
            return True
    return False


# --------------------------------------------------------------------------- checking


def check_recipe(
    modifiers: Sequence[RecipeModifier],
    matrices: Sequence[MatrixStats],
    *,
    tied_lm_head: str = "",
    source: str = RECIPE_FILE,
) -> Recipe:
    """Each pruning modifier's claims against the measured matrices (pure). `tied_lm_head`
    names the embedding matrix that serves as the lm_head when the file stores none."""
    modules = _modules(matrices, tied_lm_head)
    checks: list[RecipeCheck] = []
    pruning = [m for m in modifiers if m.type in PRUNING]
    for modifier in pruning:
        if modifier.note:
            checks.append(_unchecked(modifier, "density", modifier.note))
            continue
        if modifier.sparsity is None and modifier.mask_structure in ("", "unstructured"):
            continue  # no claim on the weights to check
        taken, unresolved = _taken(modifier, modules, modifier.targets)
        if unresolved:
            reason = f"target {unresolved!r} is a module class the weights do not show"
            if modifier.mask_structure in ("", "unstructured"):
                checks.append(_unchecked(modifier, "density", reason))
            else:
                checks.append(_unchecked(modifier, "pattern", reason, modifier.mask_structure))
            continue
        ignored = {n for n in taken if _matches(modifier.ignore, n, modules[n], own=True)}
        targeted = [n for n in taken if n not in ignored]
        checks.append(_targeted(modifier, targeted, modules))
        others = set()
        for other in pruning:
            if other is not modifier:
                found, _ = _taken(other, modules, other.targets)
                others |= {n for n in found if not _matches(other.ignore, n, modules[n], own=True)}
        kept = sorted(ignored - others)
        if kept:
            checks.append(_ignored(modifier, kept, modules))
    return Recipe(source=source, modifiers=tuple(modifiers), checks=tuple(checks))


def tied_lm_head(config: Mapping[str, Any], tied: Mapping[str, str], names: Sequence[str]) -> str:
    """The embedding matrix that is the lm_head when the weights store none of their own:
    an alias of it in a .bin file, or `tie_word_embeddings` with no `lm_head.weight`."""
    if "lm_head.weight" in tied:
        return tied["lm_head.weight"]
    if "lm_head.weight" in names or not config.get("tie_word_embeddings"):
        return ""
    return next((n for n in names if n.endswith(("embed_tokens.weight", "wte.weight"))), "")


def _modules(matrices: Sequence[MatrixStats], tied_lm_head: str) -> dict[str, MatrixStats]:
    """Module name -> its weight matrix, for every 2-D weight."""
    modules = {m.name.removesuffix(".weight"): m for m in matrices if len(m.shape) == 2}
    if tied_lm_head and "lm_head" not in modules:
        for m in matrices:
            if m.name == tied_lm_head:
                modules["lm_head"] = m
    return modules


def _linear(name: str, matrix: MatrixStats) -> bool:
    return name == "lm_head" or name.endswith(".lm_head") or matrix.role != "embedding"


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def _matches(targets: Sequence[str], name: str, matrix: MatrixStats, *, own: bool) -> bool:
    """Whether a target list takes module `name`: itself only (`own`), or through one of
    the modules it sits in; "Linear" and the `__ALL__` forms take every Linear."""
    names = [name, f"{name}.weight"] if own else [*_ancestors(name), f"{name}.weight"]
    for target in targets:
        if target in ("Linear", *_ALL):
            if _linear(name, matrix):
                return True
        elif target.startswith("re:"):
            pattern = re.compile(target[3:])
            if any(pattern.match(n) for n in names):
                return True
        elif target in names:
            return True
    return False


def _taken(
    modifier: RecipeModifier, modules: Mapping[str, MatrixStats], targets: Sequence[str]
) -> tuple[list[str], str]:
    """The Linear modules a modifier's targets take, and the first target that names
    nothing the weights show (a class name other than Linear), else ""."""
    own = modifier.type not in _LAYERWISE
    targets = targets or (("Linear",) if modifier.type in _LAYERWISE else _ALL[:1])
    taken = [n for n, m in modules.items() if _linear(n, m) and _matches(targets, n, m, own=own)]
    for target in targets:
        if target in ("Linear", *_ALL) or target.startswith("re:"):
            continue
        if not any(target in (*_ancestors(n), f"{n}.weight") for n in modules):
            return taken, target
    return taken, ""


def _targeted(
    modifier: RecipeModifier, names: list[str], modules: Mapping[str, MatrixStats]
) -> RecipeCheck:
    structure = modifier.mask_structure
    if structure not in ("", "unstructured"):
        accepted = _SATISFIES.get(structure)
        if accepted is None:
            return _unchecked(modifier, "pattern", f"{structure} is not a measured pattern")
        # patterns are measured on the linear layers' roles: an lm_head has none
        unmeasured = [n for n in names if modules[n].pattern is None]
        measured = [n for n in names if n not in unmeasured]
        bad = [n for n in measured if _pattern_kind(modules[n]) not in accepted]
        found = _verdict(modifier, "pattern", structure, None, measured, bad, modules)
        if unmeasured and found.verdict != "unchecked":
            reason = f"{', '.join(unmeasured)}: no pattern measured, not checked"
            found = replace(found, reason=reason)
        return found
    assert modifier.sparsity is not None  # check_recipe skips modifiers without a claim
    expected = 1.0 - modifier.sparsity
    bad = [n for n in names if abs(modules[n].density - expected) > DENSITY_TOLERANCE]
    return _verdict(modifier, "density", "", expected, names, bad, modules)


def _ignored(
    modifier: RecipeModifier, names: list[str], modules: Mapping[str, MatrixStats]
) -> RecipeCheck:
    sparsity = modifier.sparsity
    if sparsity is None:  # N:M without a stated sparsity: the share N:M removes
        n, m = (int(x) for x in modifier.mask_structure.split(":"))
        sparsity = 1 - n / m
    floor = 1.0 - sparsity / 2
    bad = [n for n in names if modules[n].density <= floor]
    return _verdict(modifier, "ignored", "", floor, names, bad, modules)


def _verdict(
    modifier: RecipeModifier,
    claim: str,
    expected: str,
    expected_density: float | None,
    names: list[str],
    bad: list[str],
    modules: Mapping[str, MatrixStats],
) -> RecipeCheck:
    if not names:
        return _unchecked(modifier, claim, "its targets take no matrix of the weights", expected)
    failures = tuple(RecipeMatrix(n, _pattern_kind(modules[n]), modules[n].density) for n in bad)
    densities = [modules[n].density for n in names]
    return RecipeCheck(
        modifier=modifier.type,
        claim=claim,
        expected=expected,
        expected_density=expected_density,
        verdict="mismatch" if failures else "match",
        matrices=len(names),
        failures=failures,
        density_range=(min(densities), max(densities)),
    )


def _pattern_kind(matrix: MatrixStats) -> str:
    """The measured pattern's kind ("" where none was measured: an lm_head)."""
    return matrix.pattern.kind if matrix.pattern is not None else ""


def _unchecked(
    modifier: RecipeModifier, claim: str, reason: str, expected: str = ""
) -> RecipeCheck:
    return RecipeCheck(
        modifier=modifier.type,
        claim=claim,
        expected=expected,
        expected_density=None,
        verdict="unchecked",
        reason=reason,
    )
