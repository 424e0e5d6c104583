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

import hashlib
import json
import os
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
    """Shapes, counts and shares values; counts are keyed by the hash of a value's text and
    the shared values by its digest, so a packer over a long run holds numbers, not every
    text it saw (a hash collision only shares a value that occurs once: still lossless).
    ``encoded``: keep the shared table as JSON texts (for :func:`write_packed_report`)."""

    def __init__(self, *, encoded: bool = False) -> None:
        self.shapes: dict[tuple[str, ...], int] = {}
        self.counts: Counter[int] = Counter()
        self.shared: dict[bytes, int] = {}
        self.table: list[Any] = []
        self.encoded = encoded

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
                key = hash(text)
                self.counts[key] += 1
                if self.counts[key] > 1:
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
        if len(text) >= MIN_SHARED and self.counts[hash(text)] > 1:
            digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
            index = self.shared.get(digest)
            if index is None:
                index = self.shared[digest] = len(self.table)
                self.table.append(None)
                parts = self._share_parts(value)
                self.table[index] = _enc(parts) if self.encoded else parts
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


def _lean_record(packer: _Packer, meta: dict[str, Any]) -> dict[str, Any]:
    lean = dict(meta)
    lean["turns"] = packer.shape([_lean_turn(t) for t in meta.get("turns") or []])
    if "result" in lean:
        lean["result"] = packer.shape(lean["result"])
    return lean


def _count_record(packer: _Packer, lean: dict[str, Any]) -> None:
    packer.count(lean["turns"])
    if "result" in lean:
        packer.count(lean["result"])


def _share_record(packer: _Packer, lean: dict[str, Any]) -> dict[str, Any]:
    lean["turns"] = packer.share(lean["turns"])
    if "result" in lean:
        lean["result"] = packer.share(lean["result"])
    return lean


def _packing(packer: _Packer, table: Any) -> dict[str, Any]:
    return {"format": FORMAT, "shapes": [list(k) for k in packer.shapes], "shared": table}


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
        lean = _lean_record(packer, meta)
        records.append(lean)
        test["metadata"]["crmbench"] = lean
    for lean in records:
        _count_record(packer, lean)
    for lean in records:
        _share_record(packer, lean)
    section[PACKING_KEY] = _packing(packer, packer.table)


def write_packed_report(
    path: str | os.PathLike[str],
    report: dict[str, Any],
    record: Callable[[dict[str, Any]], dict[str, Any] | None],
) -> None:
    """Write ``report`` packed, as ``pack_report`` and a compact ``json.dump`` would, but
    with each test's item record fetched by ``record(test)`` (e.g. from the results
    stream on disk) when it is needed, twice, instead of every record held in memory:
    memory stays that of one record plus the shared table. ``record`` returns None to
    keep a test's metadata as it is."""
    section = report.get("crmbench")
    tests = report.get("tests") or []
    if not isinstance(section, dict) or section.get(PACKING_KEY):
        _dump_whole(path, report)
        return
    packer = _Packer(encoded=True)

    def meta_of(test: dict[str, Any]) -> dict[str, Any] | None:
        meta = (test.get("metadata") or {}).get("crmbench")
        if not isinstance(meta, dict):
            return None
        full = record(test)
        return meta if full is None else full

    for test in tests:
        meta = meta_of(test)
        if meta is not None:
            _count_record(packer, _lean_record(packer, meta))
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("{")
        for n, (key, value) in enumerate(report.items()):
            fh.write(("," if n else "") + _enc(key) + ":")
            if key == "tests":
                fh.write("[")
                for i, test in enumerate(tests):
                    meta = meta_of(test)
                    if meta is not None:
                        lean = _share_record(packer, _lean_record(packer, meta))
                        test = {**test, "metadata": {**test["metadata"], "crmbench": lean}}
                    fh.write(("," if i else "") + _dump(test))
                fh.write("]")
            elif key == "crmbench":
                head = _dump({**section, PACKING_KEY: None})
                head = head[: -len(_enc(PACKING_KEY)) - len(":null}")]
                packing = _dump(_packing(packer, []))[: -len("[]}")]
                fh.write(head + _enc(PACKING_KEY) + ":" + packing)
                fh.write("[" + ",".join(packer.table) + "]}}")
            else:
                fh.write(_dump(value))
        fh.write("}")


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _dump_whole(path: str | os.PathLike[str], report: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(report, fh, separators=(",", ":"), ensure_ascii=False, default=str)


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
