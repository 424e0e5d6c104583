"""The JSONL results stream: one line per finished item, safe against a crash."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from pytest_crmbench.runner.records import ItemResult


class ResultsStream:
    """Appends one JSON line per finished item, flushed and fsynced: a crash loses nothing done."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()
        self._fh = self.path.open("a", encoding="utf-8")

    def _repair(self) -> None:
        """Drop a torn last line left by a killed run."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with self.path.open("r+b") as fh:
                fh.truncate(cut)

    def write(self, result: ItemResult) -> None:
        self._fh.write(json.dumps(result, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


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


def read_results(path: str | os.PathLike[str]) -> list[ItemResult]:
    """The item results of a results stream (written by :class:`ResultsStream`)."""
    return [cast(ItemResult, row) for row in read_jsonl(path)]
