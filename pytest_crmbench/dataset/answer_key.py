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
_armed = 0
_violations: list[str] = []
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
    if not _armed or event != "open" or not args:
        return
    target = args[0]
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    if not isinstance(target, str) or os.path.basename(target) not in _names:
        return
    resolved = os.path.realpath(target)
    if resolved in _protected:
        _violations.append(resolved)


@contextlib.contextmanager
def agent_code() -> Iterator[None]:
    """Arm the guard while agent code runs."""
    global _armed
    _armed += 1
    try:
        yield
    finally:
        _armed -= 1


def violations() -> list[str]:
    """The answer-key files agent code opened in this process (empty for honest agents)."""
    return list(_violations)


def protected() -> list[Path]:
    return sorted(Path(p) for p in _protected)
