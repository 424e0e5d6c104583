"""What collection learnt of a dataset, kept in pytest's cache for the next run.

Validating a conversation dataset is most of collection's time (pydantic, references,
seed records: ~0.25 ms per conversation, seconds at 12,000). A run over the very same
bytes with the very same code can only find the same: so a successful load is stored,
keyed by a hash of the files' paths and bytes and of the plugin's own files (their
names, sizes and modification times), and the next collection takes each item's digest
(:class:`~pytest_crmbench.items.Compact`) from there — the lines themselves are read
from the files again. Any change to a file or to the plugin misses the cache and
validates everything as before; a dataset with problems is never stored. It lives in
pytest's cache directory: ``--cache-clear`` empties it, ``-p no:cacheprovider`` turns
it off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from pytest_crmbench.dataset import answer_key
from pytest_crmbench.dataset.loader import Dataset, expand_paths
from pytest_crmbench.dataset.problems import Problem

#: Entries kept (one per dataset); the oldest go first.
MAX_ENTRIES = 8
_VERSION = 1  # of the entry format


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """The plugin's files as installed: a change to any of them is a new fingerprint."""
    root = Path(__file__).parent
    digest = hashlib.sha256(f"crmbench-collect-cache/{_VERSION}".encode())
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        st = path.stat()
        digest.update(f"{path.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


class CollectCache:
    """Entries under ``folder``: ``get`` a dataset as collection left it, or ``put`` one."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, paths: tuple[str, ...]) -> tuple[Dataset, list[dict[str, Any]]] | None:
        """The stored dataset for these files as they are now, with each conversation's
        stored digest (``line`` replaced by its bytes); None on a miss."""
        problems: list[Problem] = []
        files = expand_paths([Path(p) for p in paths], problems)
        if problems or not files:
            return None
        try:
            blobs = [f.read_bytes() for f in files]
        except OSError:
            return None
        key, sha = _key(files, blobs)
        try:
            entry = json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if entry.get("version") != _VERSION or entry.get("sha256") != sha:
            return None
        lines = [blob.split(b"\n") for blob in blobs]
        try:
            kept = []
            for digest in entry["kept"]:
                at = digest.pop("at")
                digest["line"] = lines[at[0]][at[1] - 1]
                kept.append(digest)
            locations = {
                conv_id: (files[at[0]], at[1]) for conv_id, at in entry["locations"].items()
            }
        except (KeyError, IndexError, TypeError):
            return None
        for f in files:
            answer_key.protect(f)  # as a load would: the files are the answer key
        dataset = Dataset(
            conversations=(),
            files=tuple(files),
            sha256=sha,
            by_id={},
            locations=locations,
            kept=(),
        )
        return dataset, kept

    def put(self, paths: tuple[str, ...], dataset: Dataset, kept: list[dict[str, Any]]) -> None:
        """Store a dataset that loaded without a problem; ``kept``: each conversation's
        digest as JSON values, ``line`` omitted (its place comes from ``locations``)."""
        files = list(dataset.files)
        index = {f: n for n, f in enumerate(files)}
        try:
            key, sha = _key(files, [f.read_bytes() for f in files])
        except OSError:
            return
        if sha != dataset.sha256:  # changed while it was being loaded
            return
        entry = {
            "version": _VERSION,
            "sha256": sha,
            "locations": {
                conv_id: [index[path], line] for conv_id, (path, line) in dataset.locations.items()
            },
            "kept": [
                {**digest, "at": [index[dataset.locations[digest["conv_id"]][0]], line]}
                for digest, line in ((d, dataset.locations[d["conv_id"]][1]) for d in kept)
            ],
        }
        with contextlib.suppress(OSError):
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(entry, out, separators=(",", ":"))
            os.replace(tmp, self.folder / f"{key}.json")  # whole or not at all
            self._prune()

    def _prune(self) -> None:
        entries = sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-MAX_ENTRIES]:
            with contextlib.suppress(OSError):
                old.unlink()


def _key(files: list[Path], blobs: list[bytes]) -> tuple[str, str]:
    """(the entry's name, the dataset's sha256 as the loader computes it)."""
    data = hashlib.sha256()
    key = hashlib.sha256(code_fingerprint().encode())
    for path, blob in zip(files, blobs, strict=True):
        data.update(blob)
        key.update(f"{path.resolve()}\n{len(blob)}\n".encode())
    key.update(data.hexdigest().encode())
    return key.hexdigest()[:32], data.hexdigest()
