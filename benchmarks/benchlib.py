"""What the benchmark scripts share: machine facts, the results file, the environment of
a measured subprocess, and the memory of a process tree (a run with xdist workers or a
PostgreSQL server is several processes).

Imported by the scripts next to it (``python benchmarks/bench_x.py`` puts this folder
on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

Measure = Literal["rss", "pss"]


def machine_info(**extra: Any) -> dict[str, Any]:
    """When and where a benchmark ran (the load average says how busy the machine was)."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        **extra,
    }


def write_results(path: str | os.PathLike[str], data: dict[str, Any]) -> Path:
    """The JSON results file (its folder made if needed)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return out


def subprocess_env(fake_model: Any = None) -> dict[str, str]:
    """The environment of a measured ``pytest`` subprocess: bytecode cached as on a
    user's machine (a sandbox may set ``PYTHONDONTWRITEBYTECODE``, and every process
    would recompile the plugin and the SDKs); with ``fake_model`` (a ``FakeModelServer``)
    no real key or base URL, fake keys and the server's URLs for both SDKs."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if fake_model is not None:
        env = {k: v for k, v in env.items() if not k.endswith(SECRET_SUFFIXES)}
        env["ANTHROPIC_API_KEY"] = env["OPENAI_API_KEY"] = "bench-fake-key"
        env["ANTHROPIC_BASE_URL"] = fake_model.anthropic_base_url
        env["OPENAI_BASE_URL"] = fake_model.openai_base_url
    return env


SECRET_SUFFIXES = ("_API_KEY", "_AUTH_TOKEN", "_BASE_URL")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return tree
    for entry in entries:
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                ppid = int(fh.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _process_kb(pid: int, measure: Measure) -> int:
    """Resident size, or proportional set size (PSS: shared pages — PostgreSQL's shared
    buffers, the libraries every worker maps — split among their sharers, so a sum over
    processes is the memory they really use; resident size where there is no PSS)."""
    sources = [(f"/proc/{pid}/status", "VmRSS:")]
    if measure == "pss":
        sources.insert(0, (f"/proc/{pid}/smaps_rollup", "Pss:"))
    for path, key in sources:
        try:
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if line.startswith(key):
                        return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return 0


def tree_mb(root: int, measure: Measure = "pss") -> float:
    """Memory of ``root`` and all its descendants, in MB (Linux ``/proc``; 0 elsewhere),
    with the embedded PostgreSQL servers they started: ``pg_ctl`` detaches a server from
    the tree, and its data dir may be in RAM (``/dev/shm``), where files are memory."""
    tree = _children()
    todo, total, seen = [root], 0, set()
    while todo:
        pid = todo.pop()
        seen.add(pid)
        total += _process_kb(pid, measure)
        todo += tree.get(pid, [])
    for postmaster, data_kb in _embedded_servers(seen):
        total += data_kb
        todo = [postmaster]
        while todo:
            pid = todo.pop()
            total += _process_kb(pid, measure)
            todo += tree.get(pid, [])
    return total / 1024


def _embedded_servers(owners: set[int]) -> list[tuple[int, int]]:
    """(postmaster pid, KB of its data dir if that is in RAM) of the embedded servers
    started by one of ``owners`` (their dir's ``owner.pid``)."""
    # lazy: the plugin's package, only where a tree is measured
    from pytest_crmbench.postgres.embedded_provider import (
        EMBEDDED_DIR_PREFIX,
        OWNER_FILE,
        RAM_ROOT,
        embedded_roots,
    )

    found = []
    for root in embedded_roots():
        for base in root.glob(EMBEDDED_DIR_PREFIX + "*"):
            try:
                owner = int((base / OWNER_FILE).read_text().split()[0])
                pid = int((base / "data" / "postmaster.pid").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            if owner in owners:
                found.append((pid, _dir_kb(base) if root == RAM_ROOT else 0))
    return found


def _dir_kb(path: Path) -> int:
    """Allocated size of the files under ``path``."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
    return total // 1024


class PeakSampler(threading.Thread):
    """The highest :func:`tree_mb` of a process tree, sampled every ``interval`` s until
    :meth:`stop`."""

    def __init__(self, pid: int, measure: Measure = "pss", interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.measure, self.interval = pid, measure, interval
        self.peak_mb = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        # Lowest priority for this thread alone (Linux): its page-table walks must not
        # take CPU from the run it measures when both cores are busy.
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        while True:
            self.peak_mb = max(self.peak_mb, tree_mb(self.pid, self.measure))
            if self._done.wait(self.interval):
                return

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak_mb
