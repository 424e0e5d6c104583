"""The JSON report's packing as first written (one ``json.dumps`` per value at every
level): the reference the faster packer in ``results/packing.py`` must match byte for
byte (see ``test_flat_memory.py``). Not used by the plugin."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from pytest_crmbench.results.packing import (
    ESCAPE,
    FORMAT,
    MIN_SHAPE,
    MIN_SHARED,
    PACKING_KEY,
    REF,
    ROW,
    TURN_DEFAULTS,
)


def _enc(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Packer:
    def __init__(self) -> None:
        self.shapes: dict[tuple[Any, ...], int] = {}
        self.counts: Counter[int] = Counter()
        self.shared: dict[bytes, int] = {}
        self.table: list[Any] = []

    def shape(self, value: Any) -> Any:
        if isinstance(value, dict):
            inner = {k: self.shape(v) for k, v in value.items()}
            if len(inner) >= MIN_SHAPE:
                index = self.shapes.setdefault(tuple(inner), len(self.shapes))
                return [ROW, index, *inner.values()]
            if set(inner) & {REF, ESCAPE}:
                return {ESCAPE: inner}
            return inner
        if isinstance(value, list):
            inner_list = [self.shape(v) for v in value]
            if inner_list and inner_list[0] == ROW:
                return [ROW, -1, *inner_list]
            return inner_list
        return value

    def count(self, value: Any) -> None:
        if isinstance(value, dict | list | str):
            text = _enc(value)
            if len(text) >= MIN_SHARED:
                key = hash(text)
                self.counts[key] += 1
                if self.counts[key] > 1:
                    return
            for v in value.values() if isinstance(value, dict) else value:
                if not isinstance(value, str):
                    self.count(v)

    def share(self, value: Any) -> Any:
        if not isinstance(value, dict | list | str):
            return value
        text = _enc(value)
        if len(text) >= MIN_SHARED and self.counts[hash(text)] > 1:
            digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
            index = self.shared.get(digest)
            if index is None:
                index = self.shared[digest] = len(self.table)
                self.table.append(None)
                self.table[index] = self.parts(value)
            return {REF: index}
        return self.parts(value)

    def parts(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.share(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.share(v) for v in value]
        return value


def _lean_turn(turn: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in turn.items() if not (k in TURN_DEFAULTS and v == TURN_DEFAULTS[k])}
    made = [{"tool": c.get("tool"), "args": c.get("args")} for c in turn.get("calls") or []]
    if "expected_calls" in out and turn.get("expected_calls") == made:
        del out["expected_calls"]
    return out


def pack_report(report: dict[str, Any]) -> None:
    """Pack ``report`` in place, as the plugin first did."""
    packer = Packer()
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
    shapes = [list(k) for k in packer.shapes]
    report["crmbench"][PACKING_KEY] = {"format": FORMAT, "shapes": shapes, "shared": packer.table}
