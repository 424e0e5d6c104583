"""The JSONL results stream: one line per finished item, safe against a crash.

Each run starts its part of the file with a header line (``{"crmbench_run": {...}}``:
the run's identity — agent, model, dataset, backend, the settings that change
verdicts — and where it ran), so ``--crm-resume`` can refuse to mix two different runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from pytest_crmbench.runner.records import ItemResult

HEADER_KEY = "crmbench_run"

#: The settings that decide what runs and how it is judged (not where or how fast): two
#: runs with the same values may be resumed into one, or merged from shards.
RUN_IDENTITY = (
    "agent",
    "agent_model",
    "agent_base_url",
    "agent_temperature",
    "agent_max_tokens",
    "backend",
    "dataset",
    "arc_defects",
    "trials",
    "judge",
    "max_calls",
    "feedback",
    "feedback_every",
    "stream_seed",
    "agent_frozen",
    "recover",
    "strict_actions",
)


class ResultsStream:
    """Appends one JSON line per finished item, flushed and fsynced: a crash loses nothing done.

    ``durable=False`` (a run's private spool of full results, see the plugin's session)
    skips the fsync: nothing is lost that a crash would not lose anyway. :meth:`write`
    returns where the line starts, for :meth:`read_at`.
    """

    def __init__(self, path: str | os.PathLike[str], *, durable: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.durable = durable
        self._repair()
        self._fh = self.path.open("ab")
        self._reader: BinaryIO | None = None

    def _repair(self) -> None:
        """Drop a torn last line left by a killed run."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with self.path.open("r+b") as fh:
                fh.truncate(cut)

    def write(self, result: ItemResult, text: str | None = None) -> int:
        """Append ``result``; ``text``: its JSON text when the caller has it (compact,
        not ASCII-escaped: what :meth:`write` would make of it)."""
        if text is None:
            text = json.dumps(dict(result), ensure_ascii=False, separators=(",", ":"))
        return self._raw(text)

    def write_header(self, header: dict[str, Any]) -> None:
        """Start a run's part of the stream with its identity."""
        self._line({HEADER_KEY: header})

    def _line(self, obj: dict[str, Any]) -> int:
        return self._raw(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))

    def _raw(self, text: str) -> int:
        offset = self._fh.tell()
        self._fh.write((text + "\n").encode("utf-8"))
        self._fh.flush()
        if self.durable:
            os.fsync(self._fh.fileno())
        return offset

    def read_at(self, offset: int) -> dict[str, Any]:
        """The line :meth:`write` put at ``offset``, parsed."""
        if self._reader is None:
            self._reader = self.path.open("rb")
        self._reader.seek(offset)
        row: dict[str, Any] = json.loads(self._reader.readline())
        return row

    def close(self) -> None:
        self._fh.close()
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def read_jsonl(path: str | os.PathLike[str]) -> Iterable[dict[str, Any]]:
    """Every complete line of a results stream (a torn last line is ignored)."""
    p = Path(path)
    if not p.exists():
        return []
    rows = []
    for line in p.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


@dataclass(frozen=True)
class StreamPart:
    """The last run's part of a results stream: its header (None in a stream written
    before headers existed) and its item results."""

    header: dict[str, Any] | None
    results: list[ItemResult]


def read_stream(path: str | os.PathLike[str]) -> StreamPart:
    header: dict[str, Any] | None = None
    rows: list[ItemResult] = []
    for row in read_jsonl(path):
        if isinstance(row.get(HEADER_KEY), dict):
            header, rows = row[HEADER_KEY], []
        elif "case_id" in row:
            rows.append(cast(ItemResult, row))
    return StreamPart(header, rows)


def read_results(path: str | os.PathLike[str]) -> list[ItemResult]:
    """The item results of the last run in a results stream."""
    return read_stream(path).results
