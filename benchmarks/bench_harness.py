"""Harness benchmarks: what the benchmark itself costs when the model costs nothing.

Targets (the project's performance targets):
  P1  harness overhead per turn, replay agent (agent time excluded):
      p50 ≤ 1 ms on memory, ≤ 4 ms on PostgreSQL
  P2  full shipped suite (conversations + golden), replay, memory, one process,
      wall incl. start-up: ≤ 15 s
  P3  the same on embedded PostgreSQL with -n 2: ≤ 40 s
  P5  `pytest --co -q` of the full suite: ≤ 2 s
  P7  peak memory of one worker: ≤ 200 MB
  P8  PostgreSQL replay throughput per worker ≥ 5 × 34 conversations/s (upstream)

P1 and P8 drive the runner in-process (every shipped conversation, several repeats);
P2, P3, P5 and P7 time real `pytest` subprocesses from the repository root.

    python benchmarks/bench_harness.py [--repeat 3] [--output PATH] [--skip-suite]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchlib import write_results

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM_CONV_PER_S = 34.0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def count_round_trips(fn: Callable[[], None]) -> int:
    """Round trips to the server while ``fn`` runs: the PostgreSQL store sends every
    statement through ``_round_trip`` (one statement, or one pipeline of them) or
    ``_exec_simple`` (one simple query); each call is one round trip."""
    from pytest_crmbench.postgres.store import PostgresStore

    count = 0
    round_trip, exec_simple = PostgresStore._round_trip, PostgresStore._exec_simple

    def counted_round_trip(self: Any, calls: Any) -> Any:
        nonlocal count
        count += 1
        return round_trip(self, calls)

    def counted_exec_simple(self: Any, command: bytes) -> None:
        nonlocal count
        count += 1
        exec_simple(self, command)

    PostgresStore._round_trip = counted_round_trip  # type: ignore[method-assign]
    PostgresStore._exec_simple = counted_exec_simple  # type: ignore[method-assign]
    try:
        fn()
    finally:
        PostgresStore._round_trip = round_trip  # type: ignore[method-assign]
        PostgresStore._exec_simple = exec_simple  # type: ignore[method-assign]
    return count


def server_cpu_s(store: Any) -> float | None:
    """CPU seconds the PostgreSQL backend process of ``store`` has used (Linux /proc;
    None elsewhere, or for a server in a container or on another machine)."""
    conn = getattr(store, "_conn", None)
    if conn is None:
        return None
    try:
        with open(f"/proc/{conn.info.backend_pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_runner(backend: str, repeat: int) -> dict[str, Any]:
    """P1 (per-turn overhead) and P8 (throughput) on one store, in this process."""
    from pytest_crmbench.agents.scripted import ReplayAgent
    from pytest_crmbench.backends import open_memory_store, open_postgres_store
    from pytest_crmbench.crm.seed import load_seed_world
    from pytest_crmbench.dataset import load_dataset
    from pytest_crmbench.locations import shipped_conversations
    from pytest_crmbench.runner import Runner

    world = load_seed_world()
    convs = load_dataset(shipped_conversations()).conversations
    server = None
    if backend == "memory":
        store: Any = open_memory_store(world)
    else:
        from pytest_crmbench.postgres import create_database, start_server

        server = start_server("embedded")
        store = open_postgres_store(create_database(server.admin_url, "bench_harness"), world)
    round_trip_us = None
    try:
        if backend != "memory":
            # Context for P8: this machine's bare round trip to the server right now.
            import psycopg

            with psycopg.connect(server.admin_url, autocommit=True) as conn:  # type: ignore[union-attr]
                t0 = time.perf_counter()
                for _ in range(2000):
                    conn.execute("SELECT 1")
                round_trip_us = (time.perf_counter() - t0) / 2000 * 1e6
        runner = Runner(store, world)
        for conv in convs:  # warm-up: reference runs cached, statements prepared
            runner.run(conv, ReplayAgent())
        p50s, item_p50s, rates = [], [], []
        cpu_started, server_started = time.process_time(), server_cpu_s(store)
        for _ in range(repeat):
            turn_overheads: list[float] = []
            item_overheads: list[float] = []
            started = time.perf_counter()
            for conv in convs:
                result = runner.run(conv, ReplayAgent())
                assert result["passed"], conv.id
                turns = result["turns"]
                turn_overheads += [t["harness_s"] for t in turns]
                agent_s = sum(t["agent_s"] for t in turns)
                item_overheads.append((result["duration_s"] - agent_s) / len(turns))
            rates.append(len(convs) / (time.perf_counter() - started))
            p50s.append(statistics.median(turn_overheads) * 1000)
            item_p50s.append(statistics.median(item_overheads) * 1000)
        passes = repeat * len(convs)
        client_cpu_ms = (time.process_time() - cpu_started) / passes * 1000
        server_now = server_cpu_s(store)
        server_cpu_ms = None
        if server_started is not None and server_now is not None:
            server_cpu_ms = (server_now - server_started) / passes * 1000
        round_trips = None
        if backend != "memory":  # one more pass, untimed: what each conversation costs

            def replay_all() -> None:
                for conv in convs:
                    runner.run(conv, ReplayAgent())

            round_trips = count_round_trips(replay_all) / len(convs)
        return {
            "conversations": len(convs),
            "turn_overhead_p50_ms": statistics.median(p50s),
            "turn_overhead_p95_ms": _pct(turn_overheads, 0.95) * 1000,
            "item_overhead_per_turn_p50_ms": statistics.median(item_p50s),
            "conversations_per_s": statistics.median(rates),
            "select_1_round_trip_us": round_trip_us,
            "round_trips_per_conversation": round_trips,
            "client_cpu_ms_per_conversation": client_cpu_ms,
            "server_cpu_ms_per_conversation": server_cpu_ms,
            "load_average_1min": os.getloadavg()[0],
        }
    finally:
        store.close()
        if server is not None:
            server.stop()


def _pytest(args: list[str]) -> tuple[float, int, str]:
    """Wall time, exit status and last line of a pytest subprocess at the repo root.

    Runs as a user would: bytecode caching on (pytest caches its rewritten modules), so an
    inherited PYTHONDONTWRITEBYTECODE is dropped.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    wall = time.perf_counter() - started
    last = (proc.stdout.strip().splitlines() or [""])[-1]
    if proc.returncode not in (0,):
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
    return wall, proc.returncode, last


def measure_suite(repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    runs = {
        "P2 memory, 1 process": ["--crm-backend", "memory", "--crm-report", "none"],
        "P3 postgres, -n 2": ["-n", "2", "--crm-postgres", "embedded", "--crm-report", "none"],
        "P5 --co": ["--co"],
    }
    _pytest(["--co"])  # warm-up: bytecode and rewrite caches, as on any second run
    for name, args in runs.items():
        walls, last = [], ""
        for _ in range(repeat):
            wall, status, last = _pytest(args)
            if status != 0:
                raise SystemExit(f"{name}: pytest exited {status}: {last}")
            walls.append(wall)
        out[name] = {"wall_s": statistics.median(walls), "runs": walls, "last_line": last}
    # Peak RSS of any child process so far (kB on Linux): the largest worker of the runs.
    out["P7 peak RSS of one process (MB)"] = (
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", default=str(ROOT / "benchmarks/results/bench_harness.json"))
    parser.add_argument("--skip-suite", action="store_true", help="only the in-process runs")
    args = parser.parse_args(argv)

    mem = measure_runner("memory", args.repeat)
    pg = measure_runner("postgres", args.repeat)
    suite = {} if args.skip_suite else measure_suite(args.repeat)

    rows: list[tuple[str, float, str, float | None]] = [
        ("P1 turn overhead p50, memory (ms)", mem["turn_overhead_p50_ms"], "≤ 1", 1.0),
        ("P1 turn overhead p50, postgres (ms)", pg["turn_overhead_p50_ms"], "≤ 4", 4.0),
        ("    item overhead per turn, memory (ms)", mem["item_overhead_per_turn_p50_ms"], "", None),
        (
            "    item overhead per turn, postgres (ms)",
            pg["item_overhead_per_turn_p50_ms"],
            "",
            None,
        ),
        ("    replay conversations/s, memory", mem["conversations_per_s"], "", None),
        (
            "P8 replay conversations/s, postgres (1 conn)",
            pg["conversations_per_s"],
            f"≥ {5 * UPSTREAM_CONV_PER_S:.0f}",
            -5 * UPSTREAM_CONV_PER_S,
        ),
    ]
    targets = {"P2 memory, 1 process": 15.0, "P3 postgres, -n 2": 40.0, "P5 --co": 2.0}
    for name, limit in targets.items():
        if name in suite:
            rows.append((f"{name} wall (s)", suite[name]["wall_s"], f"≤ {limit:g}", limit))
    if suite:
        rows.append(
            (
                "P7 peak RSS of one process (MB)",
                suite["P7 peak RSS of one process (MB)"],
                "≤ 200",
                200.0,
            )
        )

    print(
        f"bench_harness: {args.repeat} repeats, medians; python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {mem['conversations']} shipped conversations"
    )
    print(f"{'measure':<48}{'value':>12}  {'target':>8}  verdict")
    print("-" * 80)
    verdicts = {}
    for name, value, target, bound in rows:
        verdict = ""
        if bound is not None:
            ok = value >= -bound if bound < 0 else value <= bound
            verdict = "PASS" if ok else "FAIL"
            verdicts[name.strip()] = verdict
        print(f"{name:<48}{value:>12.3f}  {target:>8}  {verdict}")
    print(
        f"  P8 context: PostgreSQL bare round trip (SELECT 1) {pg['select_1_round_trip_us']:.0f} µs"
        f", {pg['round_trips_per_conversation']:.1f} round trips per conversation"
    )
    server = pg["server_cpu_ms_per_conversation"]
    print(
        f"  CPU per conversation (ms): memory {mem['client_cpu_ms_per_conversation']:.2f}"
        f"; postgres client {pg['client_cpu_ms_per_conversation']:.2f}"
        + (f" + server {server:.2f}" if server is not None else "")
        + f"; load average {pg['load_average_1min']:.2f}"
    )
    for name, data in suite.items():
        if isinstance(data, dict):
            print(f"  {name}: {data['last_line']}")

    write_results(
        args.output,
        {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "memory": mem,
            "postgres": pg,
            "suite": suite,
            "verdicts": verdicts,
        },
    )
    print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
