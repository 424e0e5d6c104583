"""References from expected-call arguments to results of earlier turns.

Ids made by the CRM are not known when a conversation is written, so an argument can
name an earlier result instead: ``{{turn_2.opportunity_id}}`` (that field of the first
result of turn 2 which has it) or ``{{turn_2.calls[0].result.quote_id}}`` (one call's
result). Turns are numbered from 1, calls from 0; a list result stands for its first
element; a dotted field (``client.name``) reads nested keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_REF = re.compile(
    r"\{\{turn_(\d+)(?:\.calls\[(\d+)\]\.result)?\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\}\}",
    re.ASCII,
)
_SYNTAX = "{{turn_N.field}} or {{turn_N.calls[I].result.field}}"

Loc = tuple[str | int, ...]
ResultsByTurn = Mapping[int, Sequence[Any]]


class RefError(ValueError):
    """A reference that is malformed or cannot be resolved against the results."""


@dataclass(frozen=True)
class Ref:
    """One parsed reference; ``call`` is None for the "first call with that field" form."""

    text: str
    turn: int
    call: int | None
    field: tuple[str, ...]


def _from_match(m: re.Match[str]) -> Ref:
    call = m.group(2)
    return Ref(
        m.group(0),
        int(m.group(1)),
        None if call is None else int(call),
        tuple(m.group(3).split(".")),
    )


def parse_refs(text: str) -> list[Ref]:
    """The references in one string; every ``{{`` must start a well-formed one."""
    refs: list[Ref] = []
    pos = 0
    while (start := text.find("{{", pos)) != -1:
        m = _REF.match(text, start)
        if m is None:
            end = text.find("}}", start)
            bad = text[start : end + 2] if end != -1 else text[start:]
            raise RefError(f"malformed reference {bad!r}: expected {_SYNTAX}")
        ref = _from_match(m)
        if ref.turn < 1:
            raise RefError(f"{ref.text}: turns are numbered from 1")
        refs.append(ref)
        pos = m.end()
    return refs


def iter_strings(value: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str]]:
    """Every string inside nested dicts and lists, with its path (to report problems)."""
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from iter_strings(item, (*loc, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from iter_strings(item, (*loc, i))


def ref_strings(value: Any, loc: Loc = ()) -> list[tuple[Loc, str]]:
    """The strings inside nested dicts and lists that hold ``{{`` (the only ones that can
    hold a reference), with their paths: :func:`iter_strings` filtered, without building
    a path for every other string (dataset validation walks every argument)."""
    out: list[tuple[Loc, str]] = []
    path: list[str | int] = list(loc)

    def walk(node: Any) -> None:
        if isinstance(node, str):
            if "{{" in node:
                out.append((tuple(path), node))
        elif isinstance(node, dict):
            for key, item in node.items():
                if isinstance(item, str) and "{{" not in item:
                    continue
                path.append(key)
                walk(item)
                path.pop()
        elif isinstance(node, list):
            for i, item in enumerate(node):
                if isinstance(item, str) and "{{" not in item:
                    continue
                path.append(i)
                walk(item)
                path.pop()

    walk(value)
    return out


def find_refs(value: Any) -> list[Ref]:
    """All references in a (nested) argument value, in order; raises RefError if malformed."""
    return [ref for _, text in iter_strings(value) for ref in parse_refs(text)]


def _first(result: Any) -> Any:
    if isinstance(result, list):
        return result[0] if result else None
    return result


def _field(ref: Ref, record: Any, where: str) -> Any:
    value = record
    for i, key in enumerate(ref.field):
        if not isinstance(value, dict) or key not in value:
            name = ".".join(ref.field[: i + 1])
            keys = ", ".join(map(str, value)) if isinstance(value, dict) else type(value).__name__
            raise RefError(f"{ref.text}: {where} has no field {name!r} (found: {keys})")
        value = value[key]
    return value


def lookup(ref: Ref, results_by_turn: ResultsByTurn) -> Any:
    """The value one reference points to."""
    calls = results_by_turn.get(ref.turn)
    if calls is None:
        raise RefError(f"{ref.text}: there are no results of turn {ref.turn}")
    if ref.call is not None:
        if ref.call >= len(calls):
            raise RefError(
                f"{ref.text}: turn {ref.turn} made {len(calls)} call(s), "
                f"so calls[{ref.call}] does not exist"
            )
        return _field(
            ref, _first(calls[ref.call]), f"the result of turn {ref.turn} calls[{ref.call}]"
        )
    key = ref.field[0]
    for result in calls:
        record = _first(result)
        if isinstance(record, dict) and key in record:
            return _field(ref, record, f"the result of turn {ref.turn}")
    raise RefError(f"{ref.text}: no call of turn {ref.turn} returned a field {key!r}")


def _resolve_str(text: str, results_by_turn: ResultsByTurn) -> Any:
    if "{{" not in text:
        return text
    refs = parse_refs(text)
    if len(refs) == 1 and refs[0].text == text:
        return lookup(refs[0], results_by_turn)  # the whole value: keep the result's type
    return _REF.sub(lambda m: str(lookup(_from_match(m), results_by_turn)), text)


def resolve(value: Any, results_by_turn: ResultsByTurn) -> Any:
    """``value`` with its references replaced; ``results_by_turn[N]`` lists turn N's results.

    A string that is exactly one reference becomes the referenced value itself (ids,
    numbers, lists keep their type); references inside a longer string are interpolated
    with ``str()``.
    """
    if isinstance(value, str):
        return _resolve_str(value, results_by_turn)
    if isinstance(value, dict):
        return {k: resolve(v, results_by_turn) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, results_by_turn) for v in value]
    return value
