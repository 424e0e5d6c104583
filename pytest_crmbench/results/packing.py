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
from array import array
from collections.abc import Callable
from itertools import compress
from json.encoder import encode_basestring as _enc_str
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


# Each value of a record becomes a node, (kind, its JSON text, payload), built bottom-up:
# every value's text is made once from its parts' texts, instead of a ``json.dumps`` of
# each subtree at every level (the texts are what counting and sharing go by). A node's
# text is exactly ``_enc`` of the shaped value it stands for.
_SCALAR, _STR, _LIST, _DICT = 0, 1, 2, 3
Node = tuple[int, str, Any]  # payload: the value | list of nodes | [(key, key text, node)]
_ROW_TEXT = _enc(ROW)
_INF = float("inf")


def _scalar_text(value: Any) -> str:
    """``_enc`` of a number, a boolean or null, without the encoder's set-up per call."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return int.__repr__(value)
    if type(value) is float and value == value and value not in (_INF, -_INF):
        return float.__repr__(value)
    return _enc(value)  # NaN, the infinities, subclasses: as json writes them (or fails)


def _key_text(key: Any) -> str:
    """A dict key's text: json turns a number, boolean or null key into a string."""
    return _enc_str(key) if type(key) is str else _enc({key: 0})[1:-3]


class _Counts:
    """How often each hash was added, up to 2 (all sharing asks): an open-addressing table
    in two arrays, a tenth of the memory of a ``Counter`` of ints (a long run adds a
    million hashes, most of them once)."""

    def __init__(self) -> None:
        self.keys = array("q", bytes(8 * 1024))
        self.seen = bytearray(1024)  # 0: an empty slot, else the count (1 or 2)
        self.used = 0

    def _slot(self, key: int) -> int:
        mask = len(self.seen) - 1
        index = key & mask
        while self.seen[index] and self.keys[index] != key:
            index = (index + 1) & mask
        return index

    def add(self, key: int) -> int:
        """Add ``key``; its count now."""
        index = self._slot(key)
        count = self.seen[index]
        if count:
            self.seen[index] = 2
            return 2
        self.keys[index] = key
        self.seen[index] = 1
        self.used += 1
        if self.used * 2 > len(self.seen):
            self._grow()
        return 1

    def get(self, key: int) -> int:
        return self.seen[self._slot(key)]

    def _grow(self) -> None:
        keys, seen = self.keys, self.seen
        self.keys = array("q", bytes(16 * len(seen)))
        self.seen = bytearray(2 * len(seen))
        # The used slots' keys and counts, in slot order (no list of a million pairs).
        for key, count in zip(compress(keys, seen), filter(None, seen), strict=True):
            index = self._slot(key)
            self.keys[index] = key
            self.seen[index] = count


class _Packer:
    """Shapes, counts and shares values; counts are keyed by the hash of a value's text and
    the shared values by its digest, so a packer over a long run holds numbers, not every
    text it saw (a hash collision only shares a value that occurs once: still lossless).
    ``encoded``: keep the shared table as JSON texts (for :func:`write_packed_report`)."""

    def __init__(self, *, encoded: bool = False) -> None:
        self.shapes: dict[tuple[Any, ...], int] = {}
        self.counts = _Counts()
        self.shared: dict[bytes, int] = {}
        self.table: list[Any] = []
        self.encoded = encoded

    def shape(self, value: Any) -> Node:
        """Dicts as rows under a shared key list, escaping what would look like encoding;
        the node of the result."""
        if type(value) is str:
            return (_STR, _enc_str(value), value)
        if isinstance(value, dict):
            nodes = [
                (_STR, _enc_str(v), v) if type(v) is str else self._leaf(v) for v in value.values()
            ]
            if len(nodes) >= MIN_SHAPE:
                index = self.shapes.setdefault(tuple(value), len(self.shapes))
                row = [(_STR, _ROW_TEXT, ROW), (_SCALAR, str(index), index), *nodes]
                return (_LIST, "[" + ",".join([n[1] for n in row]) + "]", row)
            pairs = [(k, _key_text(k), n) for k, n in zip(value, nodes, strict=True)]
            text = "{" + ",".join([kt + ":" + n[1] for _, kt, n in pairs]) + "}"
            if REF in value or ESCAPE in value:
                return (_DICT, "{" + _ESCAPE_TEXT + ":" + text + "}", [_escape(text, pairs)])
            return (_DICT, text, pairs)
        if isinstance(value, list):
            nodes = [(_STR, _enc_str(v), v) if type(v) is str else self._leaf(v) for v in value]
            if nodes and nodes[0][0] == _STR and nodes[0][2] == ROW:
                # a real list starting with the marker
                nodes = [(_STR, _ROW_TEXT, ROW), (_SCALAR, "-1", -1), *nodes]
            return (_LIST, "[" + ",".join([n[1] for n in nodes]) + "]", nodes)
        if isinstance(value, str):
            return (_STR, _enc_str(value), value)
        return (_SCALAR, _scalar_text(value), value)

    def _leaf(self, value: Any) -> Node:
        """:meth:`shape`, the common leaves without its calls."""
        kind = type(value)
        if kind is str:
            return (_STR, _enc_str(value), value)
        if value is None:
            return _NULL
        if kind is int:
            return (_SCALAR, int.__repr__(value), value)
        if kind is bool:
            return _TRUE if value else _FALSE
        return self.shape(value)

    def count(self, node: Node) -> None:
        """Count the texts of ``node`` and its parts (none in a value seen before)."""
        kind, text, payload = node
        if kind == _SCALAR:
            return
        if len(text) >= MIN_SHARED and self.counts.add(hash(text)) > 1:
            return  # its parts were counted the first time
        # A part's text is shorter than its container's: only long ones count.
        if kind == _LIST:
            for child in payload:
                if child[0] != _SCALAR and len(child[1]) >= MIN_SHARED:
                    self.count(child)
        elif kind == _DICT:
            for _, _, child in payload:
                if child[0] != _SCALAR and len(child[1]) >= MIN_SHARED:
                    self.count(child)

    def share(self, node: Node) -> tuple[Any, str]:
        """The value of ``node`` with every value that occurs twice (or more) replaced by
        a reference into the shared table, and its text."""
        kind, text, payload = node
        if kind == _SCALAR:
            return payload, text
        if len(text) >= MIN_SHARED and self.counts.get(hash(text)) > 1:
            digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
            index = self.shared.get(digest)
            if index is None:
                index = self.shared[digest] = len(self.table)
                self.table.append(None)
                parts, parts_text = self._share_parts(node)
                self.table[index] = parts_text if self.encoded else parts
            return {REF: index}, '{"' + REF + '":' + str(index) + "}"
        return self._share_parts(node)

    def _share_parts(self, node: Node) -> tuple[Any, str]:
        kind, text, payload = node
        if kind == _LIST:
            done = [
                (child[2], child[1])
                if child[0] == _SCALAR or (child[0] == _STR and len(child[1]) < MIN_SHARED)
                else self.share(child)
                for child in payload
            ]
            return [v for v, _ in done], "[" + ",".join([t for _, t in done]) + "]"
        if kind == _DICT:
            pairs = [(k, kt, self.share(child)) for k, kt, child in payload]
            text = "{" + ",".join([kt + ":" + vt for _, kt, (_, vt) in pairs]) + "}"
            return {k: v for k, _, (v, _) in pairs}, text
        return payload, text


_NULL: Node = (_SCALAR, "null", None)
_TRUE: Node = (_SCALAR, "true", True)
_FALSE: Node = (_SCALAR, "false", False)


_ESCAPE_TEXT = _enc(ESCAPE)


def _escape(text: str, pairs: list[tuple[Any, str, Node]]) -> tuple[Any, str, Node]:
    """The one pair of ``{ESCAPE: inner}``: the inner dict as a node."""
    return (ESCAPE, _ESCAPE_TEXT, (_DICT, text, pairs))


def _lean_turn(turn: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in turn.items() if not (k in TURN_DEFAULTS and v == TURN_DEFAULTS[k])}
    if "expected_calls" in out and _same_as_calls(turn):
        del out["expected_calls"]  # absent: the same tools and arguments as the calls
    return out


def _lean_record(packer: _Packer, meta: dict[str, Any]) -> dict[str, Any]:
    """The record with its turns (leaner) and sandbox result shaped, as nodes."""
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
    lean["turns"] = packer.share(lean["turns"])[0]
    if "result" in lean:
        lean["result"] = packer.share(lean["result"])[0]
    return lean


def _packing(packer: _Packer, table: Any) -> dict[str, Any]:
    return {"format": FORMAT, "shapes": [list(k) for k in packer.shapes], "shared": table}


def pack_report(report: dict[str, Any]) -> None:
    """Pack every test's ``metadata.crmbench`` record in place (see the module doc)."""
    section = report.get("crmbench")
    if not isinstance(section, dict) or section.get(PACKING_KEY):
        return
    packer = _Packer()
    tests: list[dict[str, Any]] = []
    for test in report.get("tests") or []:
        meta = (test.get("metadata") or {}).get("crmbench")
        if isinstance(meta, dict):
            tests.append(test)
            _count_record(packer, _lean_record(packer, meta))  # nodes: one record at a time
    for test in tests:
        meta = test["metadata"]["crmbench"]
        test["metadata"]["crmbench"] = _share_record(packer, _lean_record(packer, meta))
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
