"""The one reader of a card's YAML front matter, bounded so that a hostile card cannot hang it.

The block is split exactly as the Hub splits it (`huggingface_hub.repocard.REGEX_YAML_BLOCK`,
which runs in linear time) and loaded with `yaml.safe_load`, as `RepoCard` does. Before
loading, one linear pass over the parser's events refuses what makes YAML expensive:
aliases (a "billion laughs" document expands nine aliases per level into gigabytes),
nesting deeper than `MAX_DEPTH` (the composer recurses), integers longer than
`MAX_INT_DIGITS` (Python refuses to convert them) and blocks over `MAX_BYTES`. Those are
`InputError`s; YAML that does not parse is a `FrontMatterSyntaxError`, which the audit
reports as a defect of the card rather than as bad input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analyzer.errors import InputError

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "FrontMatter",
    "FrontMatterSyntaxError",
    "load_bounded_yaml",
    "load_front_matter",
    "split_front_matter",
]

MAX_BYTES = 1 << 20  # 1 MiB of YAML; real cards' front matter is a few kB
MAX_DEPTH = 64  # nested mappings and sequences
MAX_INT_DIGITS = 1000  # characters of one integer scalar


class FrontMatterSyntaxError(InputError):
    """The front matter is not valid YAML; `line` is 1-based within the YAML block."""

    def __init__(self, path: str | Path | None, problem: str, line: int | None) -> None:
        super().__init__(path, problem)
        self.line = line


@dataclass(frozen=True)
class FrontMatter:
    """A card split at its front matter, the way the Hub splits it."""

    source: str | None  # the YAML between the '---' lines; None when there is no block
    body: str  # the Markdown after the closing '---' (the whole text when there is no block)
    body_line: int  # 0-based line of `text` where the body starts
    yaml_line: int  # 0-based line of `text` where the YAML starts


def split_front_matter(text: str) -> FrontMatter:
    """Split `text` with huggingface_hub's own pattern (linear time)."""
    from huggingface_hub.repocard import REGEX_YAML_BLOCK

    match = REGEX_YAML_BLOCK.search(text)
    if match is None:
        return FrontMatter(None, text, 0, 0)
    yaml_line = match.group(1).count("\n") or match.group(1).count("\r")
    body_line = text.count("\n", 0, match.end())
    if not match.group(0).endswith(("\n", "\r")):
        body_line += 1  # the closing '---' ends the text
    return FrontMatter(match.group(2), text[match.end() :], body_line, yaml_line)


def load_front_matter(source: str, path: str | Path | None = None) -> Any:
    """`yaml.safe_load` of a front-matter block after the bounds above are checked."""
    return load_bounded_yaml(source, path)


def load_bounded_yaml(
    source: str, path: str | Path | None = None, *, what: str = "front matter", strict: bool = False
) -> Any:
    """`yaml.safe_load` of `source` after the bounds above are checked; `what` names the
    document in errors. `strict` (files that are data, never prose: recipe.yaml) refuses
    anchors and every explicit tag too (`!!python/object`, `!Modifier`), so what loads is
    plain mappings, lists and scalars. Invalid YAML is a `FrontMatterSyntaxError` for front
    matter (the audit reports it as a defect of the card), an `InputError` otherwise."""
    import yaml

    if len(source.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise InputError(path, f"{what} is over {MAX_BYTES:,} bytes")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    resolver = yaml.resolver.Resolver()
    depth = 0
    try:
        for event in yaml.parse(source, Loader=loader):
            if isinstance(event, yaml.AliasEvent):
                raise _bound(path, event, what, "uses a YAML alias (*name); aliases are refused")
            if strict and getattr(event, "anchor", None) is not None:
                raise _bound(path, event, what, "uses a YAML anchor (&name); anchors are refused")
            tag = getattr(event, "tag", None)  # node events only
            if strict and tag is not None:
                raise _bound(path, event, what, f"uses a YAML tag ({tag[:40]}); tags are refused")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _bound(path, event, what, f"nests deeper than {MAX_DEPTH} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif (
                isinstance(event, yaml.ScalarEvent)
                and len(event.value) > MAX_INT_DIGITS
                and event.implicit[0]
                and resolver.resolve(yaml.ScalarNode, event.value, (True, False))
                == "tag:yaml.org,2002:int"
            ):
                raise _bound(path, event, what, f"holds an integer over {MAX_INT_DIGITS} digits")
        return yaml.load(source, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = mark.line + 1 if mark is not None else None
        if "nesting depth" in reason:  # libyaml's own limit, met while scanning ahead
            raise InputError(path, f"{what} nests deeper than {MAX_DEPTH} levels") from None
        if what != "front matter":
            where = f" (line {line})" if line is not None else ""
            raise InputError(path, f"{what} is not valid YAML{where}: {reason}") from None
        raise FrontMatterSyntaxError(path, f"{what} is not valid YAML: {reason}", line) from None
    except (ValueError, RecursionError) as exc:  # a scalar the constructor cannot convert
        raise InputError(path, f"{what} cannot be read ({type(exc).__name__})") from None


def _bound(path: str | Path | None, event: Any, what: str, problem: str) -> InputError:
    return InputError(path, f"{what} line {event.start_mark.line + 1} {problem}")
