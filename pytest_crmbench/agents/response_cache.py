"""``--agent-cache DIR``: model responses stored under a hash of the full request.

The key is the SHA-256 of the request exactly as it is sent to the SDK (model, system
prompt, messages, tools, tool choice, temperature, max tokens, prompt-caching markers…)
and the provider — never the API key or the base URL, which are not part of the request
body. The n-th identical request of a process gets the n-th entry (``#n`` in the key), so
a first run with the cache makes exactly the calls a run without it would (trials and
repeated first messages are sampled, not merged) and a second run replays them.

Entries are JSON files ``DIR/ab/abcdef….json`` (sharded by the first two hex digits),
written to a temporary file in the same directory and renamed (``os.replace``): several
processes (xdist) and threads may write at once and a reader never sees half a file. An
unreadable or malformed entry is a miss, never an error. An entry that would contain a
known secret is not written.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

#: Bumped when the entry format or the key recipe changes (old entries become misses).
FORMAT = 1


def request_digest(provider: str, request: Mapping[str, Any]) -> str:
    """A stable digest of one request: same request, same digest (key order ignored)."""
    text = json.dumps(
        {"format": FORMAT, "provider": provider, "request": request},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


class ResponseCache:
    """One cache directory, shared by every agent of the process (see :func:`open_cache`)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()

    def key(self, provider: str, request: Mapping[str, Any]) -> str:
        """The entry key of this request's next occurrence in the process."""
        digest = request_digest(provider, request)
        with self._lock:
            n = self._seen[digest]
            self._seen[digest] += 1
        return hashlib.sha256(f"{digest}#{n}".encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry, or None (absent, unreadable, malformed: all misses)."""
        try:
            data = json.loads(self.path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return None
        if not isinstance(data.get("reply"), dict):
            return None
        return data

    def put(self, key: str, entry: Mapping[str, Any], secrets: Sequence[str | None] = ()) -> bool:
        """Store ``entry`` atomically; False when it was not stored (it held a secret, or
        the directory is not writable — the run goes on without the cache entry)."""
        text = json.dumps({"format": FORMAT, **entry}, ensure_ascii=False, default=str)
        if any(s and len(s) >= 6 and s in text for s in secrets):
            return False
        target = self.path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=target.parent)
        except OSError:
            return False
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, target)
        except OSError:
            with suppress(OSError):
                os.unlink(tmp)
            return False
        return True


_caches: dict[str, ResponseCache] = {}
_caches_lock = threading.Lock()


def open_cache(directory: str | os.PathLike[str]) -> ResponseCache:
    """The process's cache for ``directory`` (one occurrence count per directory)."""
    key = os.path.abspath(directory)
    with _caches_lock:
        cache = _caches.get(key)
        if cache is None:
            cache = _caches[key] = ResponseCache(key)
        return cache


def forget_caches() -> None:
    """Start the occurrence counts over (a new session replays from the first entry)."""
    with _caches_lock:
        _caches.clear()
