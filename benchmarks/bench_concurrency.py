"""Conversations in flight (``--crm-concurrency``) against a model of 250 ms per call.

Run from the project checkout::

    python benchmarks/bench_concurrency.py [--count 400] [--repeat 1] [--backend memory]

The stratified 400-conversation subset (``cases/conversations_400.jsonl``, or its first
``--count``) is run with ``pytest --agent claude`` against the local fake model server
(oracle policy: each turn's reference calls one per model call, then the reply; every
call takes ``--latency`` seconds) in three settings, per store:

* ``--crm-concurrency 1`` in one process (the serial baseline),
* ``--crm-concurrency 32`` in one process,
* ``-n 2 --crm-concurrency 16`` (two xdist workers).

For each run: throughput (items per second of the whole ``pytest`` process, start-up
included, and of the model phase on the fake server's clock), model calls, and the
peak memory of the whole run — the sum of the proportional set sizes (PSS: shared pages
divided among their sharers) of ``pytest`` and every process under it (xdist workers,
an embedded PostgreSQL server and its backends), sampled every 200 ms. Targets (issue
12): ≥ 20× the serial throughput in one process, ≥ 30× with ``-n 2``, whole-run peak
≤ 600 MB, and the verdicts of every run identical to the serial run's (checked item by
item; the script fails otherwise, so broken numbers are never written).

The serial run is the long one (~12 model calls per conversation: ~20 minutes for
400 conversations), so the serial runs of the two stores run side by side (they are
~98 % waiting; each store has its own fake server, so each run is counted on its own
clock); then the concurrent settings one at a time, in alternating order between
repeats. Subprocesses run with bytecode caching and pytest's cache on (this machine
sets ``PYTHONDONTWRITEBYTECODE``; a user's does not; the collect cache serves every run
after the first), so start-up is what users see. **x max** is the most ``x serial`` a
run could show with its start and end as measured and all its slots busy in between:
the gap to it is scheduling, the gap from it to the slot count is start and end. Exit
status 0 after a run (whatever the verdict), 2 when it cannot run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench_scaling import REPO, make_project  # the same throw-away project
from benchlib import PeakSampler, machine_info, subprocess_env, write_results

SETTINGS: tuple[tuple[str, int, int], ...] = (
    ("serial", 0, 1),
    ("c32", 0, 32),
    ("n2c16", 2, 16),
)
TARGETS = {"c32": 20.0, "n2c16": 30.0}
MEMORY_TARGET_MB = 600.0


# == one run ==========================================================================
def run_once(
    root: Path,
    server: Any,
    setting: tuple[str, int, int],
    backend: str,
    env: dict[str, str],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    name, workers, concurrency = setting
    results = root / f"results-{name}-{backend}-{time.monotonic_ns()}.jsonl"
    server.reset_stats()
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "cases",
        "-q",
        "-p",
        "no:hypothesispytest",
        "-p",
        "no:randomly",
        "--agent",
        "claude",
        f"--crm-backend={backend}",
        "--crm-report=none",
        f"--crm-results={results}",
        f"--crm-concurrency={concurrency}",
    ]
    if backend == "postgres":
        cmd.append("--crm-postgres=embedded")
    if workers:
        cmd += ["-n", str(workers)]
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    # A PSS read walks every page table: with the PostgreSQL server's ~40 processes a
    # sample costs ~0.1 s of CPU, taken from the run it measures (at 0.2 s: 3-5 s of a
    # 2-core machine's CPU). Memory grows smoothly to a plateau: once a second will do.
    sampler = PeakSampler(proc.pid, "pss", 1.0)
    sampler.start()
    output, _ = proc.communicate()
    ended = time.monotonic()
    wall = ended - started
    peak = sampler.stop()
    stats = server.stats_dict()
    rows = [json.loads(x) for x in results.read_text(encoding="utf-8").splitlines() if x]
    rows = [r for r in rows if "case_id" in r]
    passed = sum(r["outcome"] == "passed" for r in rows)
    if proc.returncode != 0 or passed != len(rows) or not rows:
        raise RuntimeError(
            f"{name} on {backend}: {passed}/{len(rows)} passed, exit {proc.returncode}\n"
            f"{output[-3000:]}"
        )
    phase = stats["last_answer_at"] - stats["first_request_at"]
    run = {
        "setting": name,
        "workers": workers,
        "concurrency": concurrency,
        "backend": backend,
        "items": len(rows),
        "passed": passed,
        "model_calls": stats["usage"]["agent"]["calls"],
        "wall_s": round(wall, 3),
        "model_phase_s": round(phase, 3),
        # Before the first model request (interpreters, collection, SDK import, stores)
        # and after the last answer (reports, teardown): what no slot can overlap.
        "startup_s": round(stats["first_request_at"] - started, 3),
        "teardown_s": round(ended - stats["last_answer_at"], 3),
        "items_per_s_wall": round(len(rows) / wall, 4),
        "items_per_s_model_phase": round(len(rows) / phase, 4),
        "peak_mb": round(peak, 1),
    }
    return run, rows


def verdicts(rows: list[dict[str, Any]]) -> list[Any]:
    """What must not depend on concurrency, item by item."""
    return sorted(
        (
            r["test_id"],
            r["passed"],
            [
                (t["passed"], t["reasons"], [(c["tool"], c["args"], c["ok"]) for c in t["calls"]])
                for t in r.get("turns", [])
            ],
        )
        for r in rows
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each setting (1)")
    parser.add_argument("--count", type=int, default=400, help="conversations (400)")
    parser.add_argument("--latency", type=float, default=0.25, help="seconds per model call")
    parser.add_argument(
        "--backend",
        choices=("memory", "postgres", "both"),
        default="both",
        help="store(s) to run on (both)",
    )
    parser.add_argument(
        "--dataset",
        default=str(REPO / "cases" / "conversations_400.jsonl"),
        help="conversations file; the first --count are used",
    )
    parser.add_argument(
        "--output",
        default=str(REPO / "benchmarks" / "results" / "bench_concurrency.json"),
        help="JSON results file",
    )
    args = parser.parse_args(argv)
    try:
        from pytest_crmbench.fakemodel import FakeModelServer, OraclePolicy, RouterPolicy
    except ImportError as exc:
        print(f"bench_concurrency: cannot import pytest_crmbench ({exc})", file=sys.stderr)
        return 2
    backends = ("memory", "postgres") if args.backend == "both" else (args.backend,)
    began = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="crmbench-concurrency-"))
    runs: list[dict[str, Any]] = []
    mismatches: list[str] = []
    try:
        conversations = make_project(tmp, Path(args.dataset), args.count)
        with contextlib.ExitStack() as stack:
            # One fake server per store: the serial runs of both stores run side by side
            # (they are ~98 % waiting), each counted on its own server's clock.
            servers = {
                b: stack.enter_context(
                    FakeModelServer(RouterPolicy(OraclePolicy(conversations)), latency=args.latency)
                )
                for b in backends
            }
            envs = {b: subprocess_env(servers[b]) for b in backends}

            def one(setting: tuple[str, int, int], backend: str, repeat: int) -> None:
                run, rows = run_once(tmp, servers[backend], setting, backend, envs[backend])
                run["repeat"] = repeat
                runs.append(run)
                done[(backend, setting[0], repeat)] = verdicts(rows)
                print(
                    f"  repeat {repeat + 1}/{args.repeat} {backend:<8} {setting[0]:<6}: "
                    f"wall {run['wall_s']:.1f} s, {run['items_per_s_wall']:.2f} items/s, "
                    f"peak {run['peak_mb']:.0f} MB",
                    flush=True,
                )

            done: dict[tuple[str, str, int], list[Any]] = {}
            for repeat in range(args.repeat):
                serial = [
                    threading.Thread(target=one, args=(SETTINGS[0], b, repeat)) for b in backends
                ]
                for thread in serial:
                    thread.start()
                for thread in serial:
                    thread.join()
                for setting in SETTINGS[1:] if repeat % 2 == 0 else SETTINGS[:0:-1]:
                    for backend in backends:
                        one(setting, backend, repeat)
            for (backend, name, repeat), got in done.items():
                if (backend, "serial", repeat) not in done:
                    raise RuntimeError(f"the serial run on {backend} did not finish")
                if got != done[(backend, "serial", repeat)]:
                    mismatches.append(f"{backend} {name} (repeat {repeat + 1})")
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"bench_concurrency: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if mismatches:
        print(f"bench_concurrency: verdicts differ from the serial run: {mismatches}")
        return 2

    def med(backend: str, name: str, key: str) -> float:
        return float(
            statistics.median(
                r[key] for r in runs if r["backend"] == backend and r["setting"] == name
            )
        )

    def ratio(backend: str, name: str, key: str) -> float:
        per_repeat = []
        for repeat in range(args.repeat):
            pick = {
                r["setting"]: r[key]
                for r in runs
                if r["backend"] == backend and r["repeat"] == repeat
            }
            per_repeat.append(pick[name] / pick["serial"])
        return float(statistics.median(per_repeat))

    def ceiling(backend: str, name: str) -> float:
        """The most ``x serial`` this run could show with its start and end as they were
        and every slot busy from the first model request to the last answer (the serial
        model phase shared by all slots): what scheduling could still gain."""
        per_repeat = []
        for repeat in range(args.repeat):
            pick = {
                r["setting"]: r for r in runs if r["backend"] == backend and r["repeat"] == repeat
            }
            run, serial = pick[name], pick["serial"]
            slots = max(1, run["workers"]) * run["concurrency"]
            best = run["startup_s"] + run["teardown_s"] + serial["model_phase_s"] / slots
            per_repeat.append(serial["wall_s"] / best)
        return float(statistics.median(per_repeat))

    header = (
        f"{'store':<8}  {'setting':<24}  {'items':>5}  {'calls':>5}  {'wall s':>7}  "
        f"{'items/s':>7}  {'x serial':>8}  {'x max':>6}  {'phase x':>7}  {'start s':>7}  "
        f"{'end s':>5}  {'peak MB':>7}"
    )
    print()
    print(
        f"conversations in flight, --agent claude, fake model {args.latency * 1000:.0f} ms/call,"
        f" {args.count} conversations, medians of {args.repeat}, {os.cpu_count()} CPUs"
    )
    print(header)
    print("-" * len(header))
    labels = {
        "serial": "--crm-concurrency 1",
        "c32": "--crm-concurrency 32",
        "n2c16": "-n 2 --crm-concurrency 16",
    }
    summary: dict[str, Any] = {}
    verdict = "PASS"
    for backend in backends:
        for name, _, _ in SETTINGS:
            x_wall = ratio(backend, name, "items_per_s_wall")
            x_phase = ratio(backend, name, "items_per_s_model_phase")
            x_max = ceiling(backend, name)
            peak = med(backend, name, "peak_mb")
            ok = x_wall >= TARGETS.get(name, 0) and peak <= MEMORY_TARGET_MB
            verdict = verdict if ok else "FAIL"
            summary[f"{backend}/{name}"] = {
                "items_per_s_wall": med(backend, name, "items_per_s_wall"),
                "ratio_wall": round(x_wall, 2),
                "ratio_model_phase": round(x_phase, 2),
                "ratio_wall_ceiling": round(x_max, 2),
                "peak_mb": peak,
                "target_ratio": TARGETS.get(name),
                "passed": ok,
            }
            print(
                f"{backend:<8}  {labels[name]:<24}  {args.count:>5}  "
                f"{int(med(backend, name, 'model_calls')):>5}  "
                f"{med(backend, name, 'wall_s'):>7.1f}  "
                f"{med(backend, name, 'items_per_s_wall'):>7.2f}  {x_wall:>7.1f}x  "
                f"{x_max:>5.1f}x  {x_phase:>6.1f}x  {med(backend, name, 'startup_s'):>7.1f}  "
                f"{med(backend, name, 'teardown_s'):>5.1f}  {peak:>7.0f}"
            )
    print("-" * len(header))
    print(
        f"targets: --crm-concurrency 32 ≥ {TARGETS['c32']:g}x, -n 2 --crm-concurrency 16 ≥ "
        f"{TARGETS['n2c16']:g}x (wall, start-up included), peak ≤ {MEMORY_TARGET_MB:g} MB, "
        f"verdicts identical to serial: {verdict}"
    )
    out = {
        "machine": machine_info(),
        "config": {
            "count": args.count,
            "latency_s": args.latency,
            "repeat": args.repeat,
            "dataset": args.dataset,
            "agent": "claude (fake model server, oracle policy)",
            "backends": list(backends),
        },
        "runs": runs,
        "summary": summary,
        "verdicts_identical": True,
        "verdict": verdict,
        "wall_seconds": round(time.monotonic() - began, 1),
    }
    print(f"wrote {write_results(args.output, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
