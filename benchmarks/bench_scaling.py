"""Scaling with pytest-xdist workers against a model of 250 ms per call (target P6).

Run from the project checkout::

    python benchmarks/bench_scaling.py [--repeat N] [--workers 8] [--count 48]

A fixed subset of the shipped stratified dataset (the first ``--count`` conversations of
``cases/conversations_400.jsonl``) is run with ``pytest --agent claude --crm-backend
memory`` (or ``--agent openai``) against the local fake model server (oracle policy: it
makes each turn's reference calls one per model call, then answers; every call takes
``--latency`` seconds), once with ``-n 1`` and once with ``-n WORKERS``, in alternating
order, ``--repeat`` times. The real SDK is used over HTTP on 127.0.0.1; no key or
network is needed.

Two throughputs per run (items per second):

* **model phase** — items / (last model answer − first model request), from the fake
  server's clock: the run while the model is being called, i.e. what the harness does
  with the workers once they are up. This is the P6 measure (target ≥ 6×);
* **wall** — items / the whole ``pytest`` process time, start-up of the interpreter,
  the workers and the SDK import included (context: on a 2-core machine starting 8
  workers costs several seconds of CPU).

Every run must pass every item (the oracle is exact); the script fails otherwise, so
broken numbers are never written. The table goes to stdout, the full results to JSON.
Exit status: 0 after a run (whatever the verdict), 2 when it cannot run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import machine_info, subprocess_env, write_results

REPO = Path(__file__).resolve().parents[1]
TARGET = 6.0


def make_project(root: Path, dataset: Path, count: int) -> list[Any]:
    from pytest_crmbench.dataset.loader import load_dataset

    lines = [ln for ln in dataset.read_text(encoding="utf-8").splitlines() if ln.strip()][:count]
    cases = root / "cases"
    cases.mkdir(parents=True)
    shutil.copy(REPO / "cases" / "test_conversations.py", cases / "test_conversations.py")
    (cases / "conversations.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "conftest.py").write_text('"""bench project"""\n', encoding="utf-8")
    return list(load_dataset([cases / "conversations.jsonl"]).conversations)


def run_once(
    root: Path, server: Any, workers: int, env: dict[str, str], agent: str
) -> dict[str, Any]:
    results = root / f"results-{workers}-{time.monotonic_ns()}.jsonl"
    server.reset_stats()
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "cases",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:hypothesispytest",
        "--agent",
        agent,
        "--crm-backend",
        "memory",
        "--crm-report",
        "none",
        "--crm-results",
        str(results),
        "-n",
        str(workers),
    ]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    stats = server.stats_dict()
    rows = [json.loads(x) for x in results.read_text(encoding="utf-8").splitlines() if x]
    rows = [r for r in rows if "case_id" in r]  # not the runs' header lines
    passed = sum(r["outcome"] == "passed" for r in rows)
    if proc.returncode != 0 or passed != len(rows) or not rows:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise RuntimeError(
            f"-n {workers}: {passed}/{len(rows)} passed, exit {proc.returncode}\n{tail}"
        )
    phase = stats["last_answer_at"] - stats["first_request_at"]
    return {
        "workers": workers,
        "items": len(rows),
        "passed": passed,
        "model_calls": stats["usage"]["agent"]["calls"],
        "wall_s": round(wall, 3),
        "model_phase_s": round(phase, 3),
        "items_per_s_wall": round(len(rows) / wall, 4),
        "items_per_s_model_phase": round(len(rows) / phase, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each setting (3)")
    parser.add_argument("--workers", type=int, default=8, help="xdist workers to compare (8)")
    parser.add_argument("--count", type=int, default=48, help="conversations (48)")
    parser.add_argument("--latency", type=float, default=0.25, help="seconds per model call")
    parser.add_argument(
        "--agent", choices=("claude", "openai"), default="claude", help="LLM agent (claude)"
    )
    parser.add_argument(
        "--dataset",
        default=str(REPO / "cases" / "conversations_400.jsonl"),
        help="conversations file; the first --count are used",
    )
    parser.add_argument(
        "--output",
        default=str(REPO / "benchmarks" / "results" / "bench_scaling.json"),
        help="JSON results file",
    )
    args = parser.parse_args(argv)
    try:
        from pytest_crmbench.fakemodel import FakeModelServer, OraclePolicy, RouterPolicy
    except ImportError as exc:
        print(f"bench_scaling: cannot import pytest_crmbench ({exc})", file=sys.stderr)
        return 2
    began = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="crmbench-scaling-"))
    try:
        conversations = make_project(tmp, Path(args.dataset), args.count)
        oracle = OraclePolicy(conversations)
        with FakeModelServer(RouterPolicy(oracle), latency=args.latency) as server:
            env = subprocess_env(server)
            runs: list[dict[str, Any]] = []
            for repeat in range(args.repeat):
                order = [1, args.workers] if repeat % 2 == 0 else [args.workers, 1]
                for workers in order:
                    run = run_once(tmp, server, workers, env, args.agent)
                    run["repeat"] = repeat
                    runs.append(run)
                    print(
                        f"  repeat {repeat + 1}/{args.repeat}  -n {workers}: "
                        f"wall {run['wall_s']:.1f} s, model phase {run['model_phase_s']:.1f} s",
                        flush=True,
                    )
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"bench_scaling: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def med(workers: int, key: str) -> float:
        return float(statistics.median(r[key] for r in runs if r["workers"] == workers))

    def ratios(key: str) -> list[float]:
        one = {r["repeat"]: r[key] for r in runs if r["workers"] == 1}
        many = {r["repeat"]: r[key] for r in runs if r["workers"] == args.workers}
        return [many[k] / one[k] for k in sorted(one)]

    phase_ratio = statistics.median(ratios("items_per_s_model_phase"))
    wall_ratio = statistics.median(ratios("items_per_s_wall"))
    verdict = "PASS" if phase_ratio >= TARGET else "FAIL"
    header = (
        f"{'workers':>7}  {'items':>5}  {'calls':>5}  {'wall s':>7}  {'items/s':>7}  "
        f"{'model-phase s':>13}  {'items/s':>7}"
    )
    print()
    print(
        f"scaling, --agent {args.agent}, fake model {args.latency * 1000:.0f} ms/call, "
        f"{args.count} conversations, memory store, medians of {args.repeat}"
    )
    print(header)
    print("-" * len(header))
    for workers in (1, args.workers):
        print(
            f"{workers:>7}  {args.count:>5}  {int(med(workers, 'model_calls')):>5}  "
            f"{med(workers, 'wall_s'):>7.1f}  {med(workers, 'items_per_s_wall'):>7.2f}  "
            f"{med(workers, 'model_phase_s'):>13.1f}  "
            f"{med(workers, 'items_per_s_model_phase'):>7.2f}"
        )
    print("-" * len(header))
    print(
        f"P6 throughput -n {args.workers} / -n 1 (model phase): {phase_ratio:.2f}x  "
        f"target ≥ {TARGET:g}x  {verdict}"
    )
    print(f"   throughput -n {args.workers} / -n 1 (wall, start-up included): {wall_ratio:.2f}x")
    out = {
        "machine": machine_info(),
        "config": {
            "count": args.count,
            "workers": args.workers,
            "latency_s": args.latency,
            "repeat": args.repeat,
            "dataset": args.dataset,
            "agent": f"{args.agent} (fake model server, oracle policy)",
            "backend": "memory",
        },
        "runs": runs,
        "median": {
            str(w): {
                k: med(w, k)
                for k in ("wall_s", "model_phase_s", "items_per_s_wall", "items_per_s_model_phase")
            }
            for w in (1, args.workers)
        },
        "ratio_model_phase": round(phase_ratio, 3),
        "ratio_wall": round(wall_ratio, 3),
        "target_id": "P6",
        "target_ratio": TARGET,
        "verdict": verdict,
        "wall_seconds": round(time.monotonic() - began, 1),
    }
    print(f"wrote {write_results(args.output, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
