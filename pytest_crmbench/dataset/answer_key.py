"""The datasets are the benchmark's answer key; an agent that opens one is flagged.

An agent is never given its case id, but it could still find its case by searching the
dataset files for the user's words and replay the expected calls. Every dataset file
the loader reads is registered here; while agent code runs (the runner arms the guard
around ``start``/``respond``/``feedback``, the plugin around loading and building the
agent), a CPython audit hook records any ``open`` of a registered file. The runner
marks such items ``oracle`` and failed, so a run that read the answer key scores 0 and
passes no gate.

Audit hooks cannot be removed, so the hook is installed once per process and costs one
flag test per audited event while disarmed.

The guard is per thread: with ``--crm-concurrency`` several conversations run at once,
each in a thread of its own, and a read is charged to the thread (the conversation)
whose agent code made it, never to a neighbour's.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_crmbench.locations import project_dir

_protected: set[str] = set()
_names: set[str] = set()  # file names of protected files (a cheap first filter)
_armed = 0  # threads inside agent code (a cheap test before the per-thread one)
_local = threading.local()  # .armed: this thread's depth in agent code
_violations: list[tuple[int, str]] = []  # (thread ident, file) in order
_installed = False
_lock = threading.Lock()


def protect(path: str | os.PathLike[str]) -> None:
    """Register a dataset file (its resolved path) as part of the answer key."""
    resolved = os.path.realpath(path)
    with _lock:
        _protected.add(resolved)
        _names.add(os.path.basename(resolved))
    _install()


def protect_shipped() -> None:
    """Register the shipped datasets (conversations and golden cases), wherever they are."""
    for folder, pattern in (("cases", "*.jsonl"), ("golden", "*.json")):
        try:
            files = sorted(project_dir(folder).glob(pattern))
        except FileNotFoundError:
            continue
        for path in files:
            protect(path)


def _install() -> None:
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _armed or event != "open" or not args or not getattr(_local, "armed", 0):
        return
    target = args[0]
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    if not isinstance(target, str) or os.path.basename(target) not in _names:
        return
    resolved = os.path.realpath(target)
    if resolved in _protected:
        _violations.append((threading.get_ident(), resolved))


@contextlib.contextmanager
def agent_code() -> Iterator[None]:
    """Arm the guard in this thread while agent code runs."""
    global _armed
    with _lock:
        _armed += 1
    _local.armed = getattr(_local, "armed", 0) + 1
    try:
        yield
    finally:
        _local.armed -= 1
        with _lock:
            _armed -= 1


def violations(thread: int | None = None) -> list[str]:
    """The answer-key files agent code opened in this process, or in one thread (by
    ident; the current one with ``thread_violations``). Empty for honest agents."""
    return [path for ident, path in list(_violations) if thread is None or ident == thread]


def thread_violations() -> list[str]:
    """The answer-key files agent code running in this thread opened."""
    return violations(threading.get_ident())


def protected() -> list[Path]:
    return sorted(Path(p) for p in _protected)
