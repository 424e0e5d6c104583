"""A lossless, leaner form of the item records in a JSON report.

A full replay run's records are ~11 MB, mostly tool results that repeat (the same CRM
record found by many searches) and key names. :func:`pack_report` shrinks them in place
without dropping anything: expected calls identical to the calls made are not stored
again, fields at their usual value are left out, a dict with three or more keys becomes
a row under a shared key list (``shapes``), and any value that occurs twice is stored
once (``shared``). :func:`report_items` gives back the exact item records, from a packed
report or a plain one, so every reader (gate, compare, merge, HTML report) uses it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any, cast

from pytest_crmbench.runner.records import ItemResult

FORMAT = 1
PACKING_KEY = "packing"  # under the report's ``crmbench`` section
ROW = "\u0000"  # first element of a shaped dict: [ROW, shape, *values]
REF = "$"  # {"$": n}: the n-th shared value
ESCAPE = "$$"  # {"$$": x}: x is data that merely looks like a reference or a row
MIN_SHARED = 20  # shortest encoded value worth sharing (a reference costs ~9 bytes)
MIN_SHAPE = 3  # fewest keys worth a shape
TURN_DEFAULTS: dict[str, Any] = {"reason": None, "reasons": [], "usage": None, "expect": "success"}


def _enc(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _same_as_calls(turn: dict[str, Any]) -> bool:
    expected = turn.get("expected_calls")
    made = [{"tool": c.get("tool"), "args": c.get("args")} for c in turn.get("calls") or []]
    return expected == made


class _Packer:
    def __init__(self) -> None:
        self.shapes: dict[tuple[str, ...], int] = {}
        self.counts: Counter[str] = Counter()
        self.shared: dict[str, int] = {}
        self.table: list[Any] = []

    def shape(self, value: Any) -> Any:
        """Dicts as rows under a shared key list; escapes what would look like encoding."""
        if isinstance(value, dict):
            inner = {k: self.shape(v) for k, v in value.items()}
            if len(inner) >= MIN_SHAPE:
                keys = tuple(inner)
                index = self.shapes.setdefault(keys, len(self.shapes))
                return [ROW, index, *inner.values()]
            if set(inner) & {REF, ESCAPE}:
                return {ESCAPE: inner}
            return inner
        if isinstance(value, list):
            inner_list = [self.shape(v) for v in value]
            if inner_list and inner_list[0] == ROW:
                return [ROW, -1, *inner_list]  # a real list starting with the marker
            return inner_list
        return value

    def count(self, value: Any) -> None:
        if isinstance(value, dict | list | str):
            text = _enc(value)
            if len(text) >= MIN_SHARED:
                self.counts[text] += 1
                if self.counts[text] > 1:
                    return  # its parts were counted the first time
            if isinstance(value, dict):
                for v in value.values():
                    self.count(v)
            elif isinstance(value, list):
                for v in value:
                    self.count(v)

    def share(self, value: Any) -> Any:
        if not isinstance(value, dict | list | str):
            return value
        text = _enc(value)
        if len(text) >= MIN_SHARED and self.counts[text] > 1:
            index = self.shared.get(text)
            if index is None:
                index = self.shared[text] = len(self.table)
                self.table.append(None)
                self.table[index] = self._share_parts(value)
            return {REF: index}
        return self._share_parts(value)

    def _share_parts(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.share(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.share(v) for v in value]
        return value


def _lean_turn(turn: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in turn.items() if not (k in TURN_DEFAULTS and v == TURN_DEFAULTS[k])}
    if "expected_calls" in out and _same_as_calls(turn):
        del out["expected_calls"]  # absent: the same tools and arguments as the calls
    return out


def pack_report(report: dict[str, Any]) -> None:
    """Pack every test's ``metadata.crmbench`` record in place (see the module doc)."""
    section = report.get("crmbench")
    if not isinstance(section, dict) or section.get(PACKING_KEY):
        return
    packer = _Packer()
    records: list[dict[str, Any]] = []
    for test in report.get("tests") or []:
        meta = (test.get("metadata") or {}).get("crmbench")
        if not isinstance(meta, dict):
            continue
        lean = dict(meta)
        lean["turns"] = packer.shape([_lean_turn(t) for t in meta.get("turns") or []])
        if "result" in lean:
            lean["result"] = packer.shape(lean["result"])
        records.append(lean)
        test["metadata"]["crmbench"] = lean
    for lean in records:
        packer.count(lean["turns"])
        if "result" in lean:
            packer.count(lean["result"])
    for lean in records:
        lean["turns"] = packer.share(lean["turns"])
        if "result" in lean:
            lean["result"] = packer.share(lean["result"])
    section[PACKING_KEY] = {
        "format": FORMAT,
        "shapes": [list(k) for k in packer.shapes],
        "shared": packer.table,
    }


class _Unpacker:
    def __init__(self, packing: dict[str, Any]) -> None:
        self.shapes: list[list[str]] = packing.get("shapes") or []
        self.table: list[Any] = packing.get("shared") or []
        self.done: dict[int, Any] = {}

    def value(self, value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1 and REF in value:
                index = value[REF]
                if index not in self.done:
                    self.done[index] = self.value(self.table[index])
                return self.done[index]
            if len(value) == 1 and ESCAPE in value:
                return {k: self.value(v) for k, v in value[ESCAPE].items()}
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            if len(value) >= 2 and value[0] == ROW:
                if value[1] == -1:
                    return [self.value(v) for v in value[2:]]
                keys = self.shapes[value[1]]
                return {k: self.value(v) for k, v in zip(keys, value[2:], strict=True)}
            return [self.value(v) for v in value]
        return value


def _full_turn(turn: dict[str, Any]) -> dict[str, Any]:
    out = {**{k: _copy(v) for k, v in TURN_DEFAULTS.items()}, **turn}
    if "expected_calls" not in out:
        out["expected_calls"] = [
            {"tool": c.get("tool"), "args": c.get("args")} for c in out.get("calls") or []
        ]
    return out


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def report_items(report: dict[str, Any]) -> list[ItemResult]:
    """Every test's item record, as the runner made it (a packed or plain report)."""
    packing = (report.get("crmbench") or {}).get(PACKING_KEY)
    unpack: Callable[[Any], Any] = _Unpacker(packing).value if packing else (lambda v: v)
    out: list[ItemResult] = []
    for test in report.get("tests") or []:
        meta = (test.get("metadata") or {}).get("crmbench") if isinstance(test, dict) else None
        if not isinstance(meta, dict):
            continue
        if packing:
            meta = unpack(meta)
            meta["turns"] = [_full_turn(t) for t in meta.get("turns") or []]
        out.append(cast(ItemResult, meta))
    return out
