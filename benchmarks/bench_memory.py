"""Memory and collection time as the dataset grows; the pytest layer's cost per item.

Run from the project checkout::

    python benchmarks/bench_memory.py [--sizes 1200,6000,12000] [--repeat N] [--data DIR]

For each size N a dataset of N conversations is generated (``crmbench generate --count
N``, cached in ``--data`` when given) into a throw-away project (``cases/`` with the
shipped test module), and, in subprocesses:

* ``pytest cases --co -q`` — wall time and peak RSS of collection, the first time a
  dataset is seen (``-p no:cacheprovider``), and again with pytest's cache on, the
  second collection of the same bytes (the collect cache: no validation);
* ``pytest cases --agent replay --crm-backend memory -q -p no:randomly`` — wall time and
  peak RSS of the whole run (report included).

Peak RSS is the run's process tree, sampled from ``/proc`` every 20 ms, and the main
process's exact high-water mark (``wait4``'s ``ru_maxrss``); the table shows the latter
(without ``-n`` there is one process). Each size is collected once untimed first, and
the runs go without ``PYTHONDONTWRITEBYTECODE`` (bytecode cached, as on a user's machine).

The pytest layer's cost per item is what a run spends per item beyond the runner, in
CPU time (on a shared machine wall time measures the neighbours)::

    (replay CPU − collect CPU) / N  −  Runner.run CPU time per item

where ``Runner.run`` is timed in this process on the first ``--runner-items``
conversations of the same dataset, with the same agent and store (the replay agent on a
seeded memory store). Start-up and collection cancel out; what remains is the fixtures,
the hooks, the reports, the results stream and the JSON report, per item.

Exit status: 0 after a run, 2 when it cannot run (generation or a run failed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import PeakSampler, machine_info, subprocess_env, write_results

REPO = Path(__file__).resolve().parents[1]
TARGET_PEAK_MB = 300.0  # a 12,000-conversation replay
TARGET_COLLECT_S = 5.0  # collecting 12,000 conversations
TARGET_SIZE = 12000


def measure(cmd: list[str], cwd: Path) -> dict[str, Any]:
    """Run ``cmd``; its wall time, exit code, peak RSS (main process and tree), output."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sampler = PeakSampler(proc.pid, "rss", 0.02)
    sampler.start()
    out = proc.stdout.read() if proc.stdout is not None else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    peak_tree = sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall_s": round(wall, 3),
        "exit": proc.returncode,
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),  # main process, not workers
        "peak_mb": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
        "peak_tree_mb": round(peak_tree, 1),
        "tail": out.decode("utf-8", "replace")[-2000:],
    }


def dataset(size: int, data: Path | None, scratch: Path) -> Path:
    """``conversations.jsonl`` of ``size`` generated conversations (cached in ``data``)."""
    where = (data or scratch) / f"generated-{size}"
    path = where / "conversations.jsonl"
    if path.exists():
        return path
    cmd = [sys.executable, "-m", "pytest_crmbench.cli", "generate", "--output", str(where)]
    proc = subprocess.run([*cmd, "--count", str(size)], capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not path.exists():
        raise RuntimeError(f"generate --count {size} failed: {(proc.stdout + proc.stderr)[-800:]}")
    return path


def make_project(root: Path, conversations: Path) -> Path:
    cases = root / "cases"
    cases.mkdir(parents=True)
    shutil.copy(REPO / "cases" / "test_conversations.py", cases / "test_conversations.py")
    shutil.copy(conversations, cases / "conversations.jsonl")
    (root / "conftest.py").write_text('"""bench project"""\n', encoding="utf-8")
    return root


# As a user runs it: bytecode (and pytest's rewritten plugin modules) cached on disk, not
# compiled again on every start (~3 s of a 12,000-item collection with the variable set).
ENV = subprocess_env()
PYTEST = [sys.executable, "-m", "pytest", "cases", "-q", "-p", "no:randomly"]
CACHED = [*PYTEST, "-p", "no:hypothesispytest"]  # pytest's cache on: the collect cache
PYTEST += ["-p", "no:cacheprovider", "-p", "no:hypothesispytest"]  # a first collection


def run_size(root: Path, size: int, workers: int) -> dict[str, Any]:
    measure([*PYTEST, "--co"], root)  # warm-up: bytecode caches, page cache
    collect = measure([*PYTEST, "--co"], root)
    if collect["exit"] != 0 or f"{size} tests collected" not in collect["tail"]:
        raise RuntimeError(f"collection of {size} failed:\n{collect['tail']}")
    shutil.rmtree(root / ".pytest_cache", ignore_errors=True)
    measure([*CACHED, "--co"], root)  # validates and fills the collect cache
    cached = measure([*CACHED, "--co"], root)  # the same dataset collected again
    if cached["exit"] != 0 or f"{size} tests collected" not in cached["tail"]:
        raise RuntimeError(f"cached collection of {size} failed:\n{cached['tail']}")
    cmd = [*PYTEST, "--agent", "replay", "--crm-backend", "memory"]
    if workers:
        cmd += ["-n", str(workers)]
    run = measure(cmd, root)
    if run["exit"] != 0 or f"{size} passed" not in run["tail"]:
        raise RuntimeError(f"replay of {size} failed (exit {run['exit']}):\n{run['tail']}")
    report = root / ".crmbench" / "report.json"
    run["report_mb"] = round(report.stat().st_size / 2**20, 2) if report.exists() else None
    for part in (collect, cached, run):
        part.pop("tail")
    return {"size": size, "collect": collect, "collect_cached": cached, "replay": run}


def runner_ms_per_item(conversations: Path, items: int) -> float:
    """``Runner.run`` per item, in this process: replay agent, seeded memory store."""
    from pytest_crmbench.agents.loading import make_agent
    from pytest_crmbench.backends import open_memory_store
    from pytest_crmbench.crm.seed import load_seed_world
    from pytest_crmbench.dataset.loader import load_dataset
    from pytest_crmbench.runner import Runner

    lines = conversations.read_text(encoding="utf-8").splitlines()[:items]
    with tempfile.TemporaryDirectory(prefix="crmbench-mem-runner-") as tmp:
        subset = Path(tmp) / "subset.jsonl"
        subset.write_text("\n".join(lines) + "\n", encoding="utf-8")
        convs = load_dataset([subset]).conversations
    world = load_seed_world()
    runner = Runner(open_memory_store(world), world)
    agent = make_agent("replay")
    started = time.process_time()
    for conv in convs:
        runner.run(conv, agent)
    return (time.process_time() - started) * 1000 / len(convs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1200,6000,12000", help="dataset sizes (comma list)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each size (3)")
    parser.add_argument("--workers", type=int, default=0, help="-n for the replay run (none)")
    parser.add_argument("--data", help="folder caching the generated datasets (reused)")
    parser.add_argument(
        "--runner-items", type=int, default=1200, help="conversations timed in-process (1200)"
    )
    parser.add_argument(
        "--output",
        default=str(REPO / "benchmarks" / "results" / "bench_memory.json"),
        help="JSON results file",
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    began = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="crmbench-memory-"))
    data = Path(args.data) if args.data else None
    runs: list[dict[str, Any]] = []
    runner_ms: list[float] = []
    try:
        for size in sizes:
            conversations = dataset(size, data, scratch)
            for repeat in range(args.repeat):
                root = make_project(scratch / f"project-{size}-{repeat}", conversations)
                run = run_size(root, size, args.workers)
                run["repeat"] = repeat
                runs.append(run)
                shutil.rmtree(root, ignore_errors=True)
                print(
                    f"  {size:>6}  repeat {repeat + 1}/{args.repeat}: collect "
                    f"{run['collect']['wall_s']:.1f} s {run['collect']['peak_mb']:.0f} MB, "
                    f"replay {run['replay']['wall_s']:.1f} s {run['replay']['peak_mb']:.0f} MB",
                    flush=True,
                )
        first = dataset(sizes[0], data, scratch)
        for _ in range(args.repeat):
            runner_ms.append(runner_ms_per_item(first, args.runner_items))
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"bench_memory: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    runner_med = statistics.median(runner_ms)
    rows: list[dict[str, Any]] = []
    for size in sizes:
        mine = [r for r in runs if r["size"] == size]

        def med(phase: str, key: str, rows_: list[dict[str, Any]] = mine) -> float:
            return float(statistics.median(r[phase][key] for r in rows_))

        layer = [
            (r["replay"]["cpu_s"] - r["collect"]["cpu_s"]) * 1000 / size - runner_med for r in mine
        ]
        rows.append(
            {
                "size": size,
                "collect_s": med("collect", "wall_s"),
                "collect_cpu_s": med("collect", "cpu_s"),
                "collect_peak_mb": med("collect", "peak_mb"),
                "collect_cached_s": med("collect_cached", "wall_s"),
                "collect_cached_cpu_s": med("collect_cached", "cpu_s"),
                "replay_s": med("replay", "wall_s"),
                "replay_cpu_s": med("replay", "cpu_s"),
                "replay_peak_mb": med("replay", "peak_mb"),
                "replay_peak_tree_mb": med("replay", "peak_tree_mb"),
                "report_mb": mine[0]["replay"].get("report_mb"),
                "pytest_layer_ms_per_item": round(statistics.median(layer), 3),
            }
        )
    header = (
        f"{'convs':>6}  {'collect s':>9}  {'cpu s':>6}  {'cached s':>8}  {'cpu s':>6}  "
        f"{'collect MB':>10}  {'replay s':>8}  "
        f"{'cpu s':>6}  {'replay MB':>9}  {'report MB':>9}  {'layer ms/item':>13}"
    )
    print()
    print(
        "memory, --agent replay --crm-backend memory"
        + (f" -n {args.workers}" if args.workers else "")
        + f", medians of {args.repeat}; Runner.run {runner_med:.2f} ms CPU/item in-process"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['size']:>6}  {row['collect_s']:>9.2f}  {row['collect_cpu_s']:>6.2f}  "
            f"{row['collect_cached_s']:>8.2f}  {row['collect_cached_cpu_s']:>6.2f}  "
            f"{row['collect_peak_mb']:>10.0f}  {row['replay_s']:>8.1f}  "
            f"{row['replay_cpu_s']:>6.1f}  {row['replay_peak_mb']:>9.0f}  "
            f"{row['report_mb'] or 0:>9.1f}  {row['pytest_layer_ms_per_item']:>13.2f}"
        )
    print("-" * len(header))
    verdicts: dict[str, str] = {}
    target = next((r for r in rows if r["size"] == TARGET_SIZE), None)
    if target is not None:
        verdicts["peak"] = "PASS" if target["replay_peak_mb"] < TARGET_PEAK_MB else "FAIL"
        verdicts["collect"] = "PASS" if target["collect_s"] < TARGET_COLLECT_S else "FAIL"
        cached_ok = target["collect_cached_s"] < TARGET_COLLECT_S
        verdicts["collect_cached"] = "PASS" if cached_ok else "FAIL"
        print(
            f"replay of {TARGET_SIZE} peak {target['replay_peak_mb']:.0f} MB  target < "
            f"{TARGET_PEAK_MB:.0f} MB  {verdicts['peak']}"
        )
        print(
            f"collect {TARGET_SIZE} {target['collect_s']:.2f} s (first time), "
            f"{target['collect_cached_s']:.2f} s (again)  target < {TARGET_COLLECT_S:g} s  "
            f"{verdicts['collect']} / {verdicts['collect_cached']}"
        )
    result = {
        "machine": machine_info(),
        "config": {
            "sizes": sizes,
            "repeat": args.repeat,
            "workers": args.workers,
            "runner_items": args.runner_items,
        },
        "runner_ms_per_item": [round(x, 3) for x in runner_ms],
        "runner_ms_per_item_median": round(runner_med, 3),
        "runs": runs,
        "medians": rows,
        "targets": {"peak_mb": TARGET_PEAK_MB, "collect_s": TARGET_COLLECT_S, "size": TARGET_SIZE},
        "verdicts": verdicts,
        "wall_seconds": round(time.monotonic() - began, 1),
    }
    print(f"results: {write_results(args.output, result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
