"""CRM tool latency on both stores, and per-item isolation cost on PostgreSQL (target P4).

Run from the project checkout::

    python benchmarks/bench_crm.py [--repeat N] [--output PATH] [--postgres URL]

Two measurements, each on the memory store and on PostgreSQL (the embedded server this
script starts and stops itself, or an existing server named by ``--postgres``):

1. **Tool latency.** Representative tools called through ``CRM.call`` (so each call runs
   inside its savepoint, as agents' calls do), in batches; the store is reset between
   batches (untimed) so its size stays bounded. Per repeat: p50, p95 and mean in µs;
   the table quotes the median over repeats, and the PostgreSQL/memory ratio of the
   p50s measured in the same repeat.
2. **Per-item isolation (P4).** With the seed world loaded, each item makes 3 writes,
   then ``store.reset()`` (ROLLBACK + BEGIN on PostgreSQL) is timed together with the
   next statement, less that statement alone (the store may send the reset with it).
   For context, the cost of re-seeding a second database instead (TRUNCATE + load, and
   DROP/CREATE + load) is measured too, on its own connection so the measured store is
   not disturbed.

The table goes to stdout, the full results (per-repeat numbers, machine info) to JSON.
Exit status: 0 after a run (whatever the verdicts), 2 when it cannot run (e.g. no
PostgreSQL server could be started or reached).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import benchlib

from pytest_crmbench.backends import open_memory_store, open_postgres_store
from pytest_crmbench.crm import (
    CRM,
    CrmError,
    DeterministicIds,
    FixedClock,
    SeedWorld,
    Store,
    load_seed_world,
)
from pytest_crmbench.crm.entities import LOAD_ORDER
from pytest_crmbench.crm.enums import CLOSED_STAGES
from pytest_crmbench.postgres import (
    PostgresProviderError,
    PostgresServer,
    create_database,
    drop_database,
    start_server,
)

if TYPE_CHECKING:
    from pytest_crmbench.postgres.store import PostgresStore

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "bench_crm.json"
P4_TARGET_MS = 1.0
BATCH = 50  # calls between two (untimed) store resets
WRITES_PER_ITEM = 3

Args = dict[str, Any]


# --------------------------------------------------------------------------- statistics


def percentile(data: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (``pct`` in 0..100) of a non-empty sample."""
    ordered = sorted(data)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * pct / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(sample: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(sample),
        "p50": round(percentile(sample, 50), 4),
        "p95": round(percentile(sample, 95), 4),
        "mean": round(statistics.fmean(sample), 4),
        "min": round(min(sample), 4),
        "max": round(max(sample), 4),
    }


def over_repeats(per_repeat: list[dict[str, float]]) -> dict[str, Any]:
    """Medians over repeats of each per-repeat statistic, plus the per-repeat list."""
    return {
        "p50": statistics.median(r["p50"] for r in per_repeat),
        "p95": statistics.median(r["p95"] for r in per_repeat),
        "mean": statistics.median(r["mean"] for r in per_repeat),
        "p50_spread": [min(r["p50"] for r in per_repeat), max(r["p50"] for r in per_repeat)],
        "per_repeat": per_repeat,
    }


# --------------------------------------------------------------------------- scenarios


@dataclass
class World:
    """Seed ids and values the scenarios draw their arguments from."""

    seed: SeedWorld
    clients: list[str]
    open_opps: list[str]
    rich_opp: str
    close_date: str
    name_fragment: str
    search_stage: str
    search_min: float
    search_max: float

    @classmethod
    def from_seed(cls, seed: SeedWorld) -> World:
        opps = seed.tables["opportunities"]
        open_opps = [o["opportunity_id"] for o in opps if o["stage"] not in CLOSED_STAGES]
        related: dict[str, int] = {o["opportunity_id"]: 0 for o in opps}
        for q in seed.tables["quotes"]:
            related[q["opportunity_id"]] += 1
        for c in seed.tables["contracts"]:
            if c["opportunity_id"] in related:
                related[c["opportunity_id"]] += 1
        for table in ("documents", "notes"):
            for r in seed.tables[table]:
                if r["entity_type"] == "Opportunity" and r["entity_id"] in related:
                    related[r["entity_id"]] += 1
        # The stage with most deals, and an amount range holding about half of them.
        stages: dict[str, list[float]] = {}
        for o in opps:
            stages.setdefault(o["stage"], []).append(o["amount"])
        stage, amounts = max(stages.items(), key=lambda kv: len(kv[1]))
        amounts.sort()
        if not open_opps:
            raise RuntimeError("the seed world has no open opportunity to benchmark with")
        return cls(
            seed=seed,
            clients=[c["client_id"] for c in seed.tables["clients"]],
            open_opps=open_opps,
            rich_opp=max(related, key=lambda k: related[k]),
            close_date=(seed.reference_date + timedelta(days=90)).isoformat(),
            name_fragment=seed.tables["clients"][0]["name"].split()[0].lower(),
            search_stage=stage,
            search_min=amounts[len(amounts) // 4],
            search_max=amounts[(3 * len(amounts)) // 4],
        )


class Counter:
    """Run-wide counter so that names and emails never collide across batches."""

    def __init__(self) -> None:
        self.value = 0

    def next(self) -> int:
        self.value += 1
        return self.value


@dataclass
class Scenario:
    """One benchmarked tool call: how to make the arguments of a batch of ``n`` calls.

    ``prepare`` runs after the store reset and before the timed loop (it may create
    records the calls need); ``fails`` says every call must raise a ``CrmError``;
    ``check`` validates one result during warm-up so an empty search is not timed.
    """

    label: str
    tool: str
    prepare: Callable[[CRM, World, Counter, int], list[Args]]
    fails: bool = False
    check: Callable[[Any], bool] = field(default=lambda result: True)


def _pick(items: Sequence[str], i: int) -> str:
    return items[i % len(items)]


def _new_clients(crm: CRM, w: World, c: Counter, n: int) -> list[Args]:
    out = []
    for _ in range(n):
        k = c.next()
        out.append(
            {
                "name": f"Bench Client {k}",
                "email": f"bench{k}@example.test",
                "status": "Prospect",
                "industry": "Software",
                "owner": "Bench Rep",
            }
        )
    return out


def _new_opportunities(crm: CRM, w: World, c: Counter, n: int) -> list[Args]:
    out = []
    for i in range(n):
        k = c.next()
        out.append(
            {
                "name": f"Bench Deal {k}",
                "client_id": _pick(w.clients, k),
                "stage": "Qualification",
                "amount": 10_000 + i,
                "close_date": w.close_date,
                "probability": 30,
                "owner": "Bench Rep",
            }
        )
    return out


def _new_quotes(crm: CRM, w: World, c: Counter, n: int) -> list[Args]:
    out = []
    for i in range(n):
        k = c.next()
        out.append(
            {
                "opportunity_id": _pick(w.open_opps, k),
                "amount": 5_000 + i,
                "status": "Draft",
                "version": "v1",
                "quote_prefix": "QB",
            }
        )
    return out


def _modify_opportunities(crm: CRM, w: World, c: Counter, n: int) -> list[Args]:
    out = []
    for i in range(n):
        k = c.next()
        out.append(
            {
                "opportunity_id": _pick(w.open_opps, k),
                "updates": {"amount": 20_000 + i, "probability": 10 + k % 80},
            }
        )
    return out


def _documents(crm: CRM, w: World, c: Counter, n: int) -> list[Args]:
    out = []
    for _ in range(n):
        k = c.next()
        out.append(
            {
                "entity_type": "Opportunity",
                "entity_id": _pick(w.open_opps, k),
                "file_name": f"proposal-{k}.pdf",
                "uploaded_by": "Bench Rep",
            }
        )
    return out


def _opportunity_search(crm: CRM, w: World, c: Counter, n: int) -> list[Args]:
    args = {"stage": w.search_stage, "min_amount": w.search_min, "max_amount": w.search_max}
    return [args] * n


def _client_search(crm: CRM, w: World, c: Counter, n: int) -> list[Args]:
    return [{"name": w.name_fragment}] * n


def _details(crm: CRM, w: World, c: Counter, n: int) -> list[Args]:
    return [{"opportunity_id": w.rich_opp}] * n


def _summarize(crm: CRM, w: World, c: Counter, n: int) -> list[Args]:
    return [{}] * n


def _deletable(crm: CRM, w: World, c: Counter, n: int) -> list[Args]:
    """``n`` fresh opportunities, each with 2 quotes (one with a document), a note
    and a contract, so every delete runs the whole cascade (untimed setup)."""
    out = []
    for _ in range(n):
        k = c.next()
        client = _pick(w.clients, k)
        opp = crm.call(
            "create_new_opportunity",
            {
                "name": f"Doomed Deal {k}",
                "client_id": client,
                "stage": "Proposal",
                "amount": 50_000,
                "close_date": w.close_date,
            },
        )["opportunity_id"]
        q1 = crm.call("create_quote", {"opportunity_id": opp, "amount": 1, "status": "Draft"})
        crm.call("create_quote", {"opportunity_id": opp, "amount": 2, "status": "Sent"})
        crm.call(
            "upload_document",
            {"entity_type": "Quote", "entity_id": q1["quote_id"], "file_name": f"q{k}.pdf"},
        )
        crm.call("add_note", {"entity_type": "Opportunity", "entity_id": opp, "content": "bye"})
        crm.call("create_contract", {"client_id": client, "opportunity_id": opp, "value": 10})
        out.append({"opportunity_id": opp})
    return out


def _invalid_probability(crm: CRM, w: World, c: Counter, n: int) -> list[Args]:
    return [
        {"opportunity_id": _pick(w.open_opps, c.next()), "updates": {"probability": 150}}
        for _ in range(n)
    ]


def _nonempty(result: Any) -> bool:
    return bool(result)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("create_new_client", "create_new_client", _new_clients),
    Scenario("create_new_opportunity", "create_new_opportunity", _new_opportunities),
    Scenario("create_quote", "create_quote", _new_quotes),
    Scenario("modify_opportunity", "modify_opportunity", _modify_opportunities),
    Scenario("upload_document", "upload_document", _documents),
    Scenario(
        "opportunity_search (stage+amount)",
        "opportunity_search",
        _opportunity_search,
        check=_nonempty,
    ),
    Scenario("client_search (name substring)", "client_search", _client_search, check=_nonempty),
    Scenario(
        "view_opportunity_details",
        "view_opportunity_details",
        _details,
        check=lambda r: bool(r["quotes"]),
    ),
    Scenario(
        "summarize_opportunities (all)",
        "summarize_opportunities",
        _summarize,
        check=lambda r: r["total_count"] > 0,
    ),
    Scenario(
        "delete_opportunity (cascade)",
        "delete_opportunity",
        _deletable,
        check=lambda r: r.get("deleted") is True,
    ),
    Scenario(
        "failing call (probability 150)",
        "modify_opportunity",
        _invalid_probability,
        fails=True,
    ),
)


# --------------------------------------------------------------------------- measurement


def timed_batch(crm: CRM, scenario: Scenario, args_list: list[Args]) -> list[float]:
    """Time each call (µs); a call that fails when it should not (or vice versa) aborts."""
    call = crm.call
    clock = time.perf_counter_ns
    tool = scenario.tool
    times: list[float] = []
    for args in args_list:
        error: CrmError | None = None
        t0 = clock()
        try:
            call(tool, args)
        except CrmError as exc:
            error = exc
        t1 = clock()
        if (error is not None) != scenario.fails:
            raise RuntimeError(
                f"{scenario.label}: unexpected {'error ' + str(error) if error else 'success'}"
            )
        times.append((t1 - t0) / 1000.0)
    return times


def warm_up(crm: CRM, w: World, counter: Counter, scenario: Scenario) -> None:
    crm.store.reset()
    for args in scenario.prepare(crm, w, counter, 5):
        try:
            result = crm.call(scenario.tool, args)
        except CrmError as exc:
            if scenario.fails:
                continue
            raise RuntimeError(f"{scenario.label}: warm-up call failed: {exc}") from exc
        if scenario.fails:
            raise RuntimeError(f"{scenario.label}: warm-up call should have failed")
        if not scenario.check(result):
            raise RuntimeError(f"{scenario.label}: unexpected warm-up result {result!r:.200}")
    crm.store.reset()


def measure_tool(
    crm: CRM, w: World, counter: Counter, scenario: Scenario, calls: int
) -> list[float]:
    times: list[float] = []
    remaining = calls
    gc.collect()  # once per tool: a full collection costs ~20 ms, too much per batch
    while remaining > 0:
        n = min(BATCH, remaining)
        crm.store.reset()
        args_list = scenario.prepare(crm, w, counter, n)
        times.extend(timed_batch(crm, scenario, args_list))
        remaining -= n
    crm.store.reset()
    return times


def measure_reset(crm: CRM, w: World, counter: Counter, items: int) -> list[float]:
    """Per item: 3 writes through ``crm.call``, then the cost of isolation (ms): the
    ``store.reset()`` and the next item's first statement, less that statement alone.

    A store may defer the reset (the PostgreSQL store sends its ROLLBACK and BEGIN in
    the same round trip as the next statement), so timing ``reset()`` by itself would
    measure nothing; the read after it pays the deferred work, the second read (another
    row, same kind of statement) measures a statement without it.
    """
    store = crm.store
    store.reset()
    base = crm.call("summarize_counts")
    clock = time.perf_counter_ns
    times: list[float] = []
    gc.collect()
    for _ in range(items):
        k = counter.next()
        opp = _pick(w.open_opps, k)
        crm.call(
            "create_new_client",
            {"name": f"Item Client {k}", "email": f"item{k}@example.test", "status": "Active"},
        )
        crm.call("modify_opportunity", {"opportunity_id": opp, "updates": {"probability": 55}})
        crm.call("add_note", {"entity_type": "Opportunity", "entity_id": opp, "content": "x"})
        t0 = clock()
        store.reset()
        store.get("clients", _pick(w.clients, k))
        t1 = clock()
        store.get("clients", _pick(w.clients, k + 1))
        t2 = clock()
        times.append(max(0.0, (t1 - t0) - (t2 - t1)) / 1e6)
    if crm.call("summarize_counts") != base:
        raise RuntimeError(f"{store.backend}: reset did not restore the seed world")
    return times


class Reseeder:
    """A second PostgreSQL database re-seeded from scratch, for comparison with reset."""

    def __init__(self, url: str, world: SeedWorld) -> None:
        import psycopg
        from psycopg import sql

        self.world = world
        self.store = cast("PostgresStore", open_postgres_store(url, world))
        self.side: psycopg.Connection[Any] = psycopg.connect(url, autocommit=True)
        self.truncate = sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
            sql.SQL(", ").join(sql.Identifier(t) for t in LOAD_ORDER)
        )

    def truncate_and_load(self) -> float:
        t0 = time.perf_counter_ns()
        self.side.execute(self.truncate)
        self.world.load_into(self.store)
        self.store.mark_base()
        return (time.perf_counter_ns() - t0) / 1e6

    def recreate_and_load(self) -> float:
        t0 = time.perf_counter_ns()
        self.store.install_schema()
        self.world.load_into(self.store)
        self.store.mark_base()
        return (time.perf_counter_ns() - t0) / 1e6

    def close(self) -> None:
        self.side.close()
        self.store.close()


# --------------------------------------------------------------------------- report


def machine_info(server: PostgresServer) -> dict[str, Any]:
    import psycopg

    return benchlib.machine_info(
        machine=platform.machine(),
        psycopg=psycopg.__version__,
        postgres_provider=server.provider,
        postgres=server.description,
        postgres_version=server.server_version,
    )


def render(results: dict[str, Any]) -> str:
    lines: list[str] = []
    cfg = results["config"]
    mach = results["machine"]
    lines.append(
        f"bench_crm: {cfg['repeat']} repeats, {cfg['calls_per_tool']} calls per tool per "
        f"repeat (store reset every {cfg['batch']}); medians over repeats"
    )
    lines.append(
        f"python {mach['python']}, {mach['cpus']} CPUs, {mach['postgres']}, {mach['date']}"
    )
    lines.append("")
    head = (
        f"{'tool latency (µs)':<36} {'mem p50':>9} {'mem p95':>9} "
        f"{'pg p50':>9} {'pg p95':>9} {'pg/mem':>7}"
    )
    lines.append(head)
    lines.append("-" * len(head))
    for label, row in results["tools"].items():
        mem, pg = row["memory"], row["postgres"]
        lines.append(
            f"{label:<36} {mem['p50']:>9.1f} {mem['p95']:>9.1f} "
            f"{pg['p50']:>9.1f} {pg['p95']:>9.1f} {row['ratio_p50']:>6.1f}x"
        )
    lines.append("")
    iso = results["isolation"]
    head = (
        f"{'per-item isolation (ms)':<36} {'p50':>8} {'p95':>8} {'mean':>8} "
        f"{'target':>8} {'verdict':>8}"
    )
    lines.append(head)
    lines.append("-" * len(head))
    for key, label in (
        ("postgres_reset", f"P4 postgres reset after {WRITES_PER_ITEM} writes"),
        ("memory_reset", f"memory reset after {WRITES_PER_ITEM} writes"),
        ("postgres_truncate_reseed", "postgres TRUNCATE + re-seed"),
        ("postgres_recreate_reseed", "postgres DROP/CREATE + re-seed"),
    ):
        r = iso[key]
        target = f"≤ {r['target_ms']:g}" if "target_ms" in r else "-"
        verdict = r.get("verdict", "-")
        lines.append(
            f"{label:<36} {r['p50']:>8.3f} {r['p95']:>8.3f} {r['mean']:>8.3f} "
            f"{target:>8} {verdict:>8}"
        )
    lines.append(
        f"(re-seed / reset ratio, same repeats: TRUNCATE {iso['ratio_truncate_vs_reset']:.0f}x, "
        f"DROP/CREATE {iso['ratio_recreate_vs_reset']:.0f}x)"
    )
    lines.append(f"wall time {results['wall_seconds']:.1f} s")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    seed = load_seed_world()
    w = World.from_seed(seed)
    counter = Counter()
    mode = "url" if args.postgres else "embedded"
    server = start_server(mode, url=args.postgres)
    suffix = f"{os.getpid()}"
    db_main, db_reseed = f"crmbench_bench_{suffix}", f"crmbench_bench_reseed_{suffix}"
    stores: dict[str, Store] = {}
    reseeder: Reseeder | None = None
    created: list[str] = []
    try:
        print(f"PostgreSQL: {server.description}", file=sys.stderr)
        stores["memory"] = open_memory_store(seed)
        url = create_database(server.admin_url, db_main)
        created.append(db_main)
        stores["postgres"] = open_postgres_store(url, seed)
        url2 = create_database(server.admin_url, db_reseed)
        created.append(db_reseed)
        reseeder = Reseeder(url2, seed)
        crms = {
            name: CRM(
                store,
                clock=FixedClock(seed.reference_date),
                ids=DeterministicIds(f"bench-{name}"),
            )
            for name, store in stores.items()
        }

        for crm in crms.values():
            for scenario in SCENARIOS:
                warm_up(crm, w, counter, scenario)
            measure_reset(crm, w, counter, 10)
        reseeder.truncate_and_load()

        tool_runs: dict[str, dict[str, list[dict[str, float]]]] = {
            s.label: {name: [] for name in crms} for s in SCENARIOS
        }
        reset_runs: dict[str, list[dict[str, float]]] = {name: [] for name in crms}
        truncate_runs: list[dict[str, float]] = []
        recreate_runs: list[dict[str, float]] = []
        order = list(crms)
        for rep in range(args.repeat):
            print(f"repeat {rep + 1}/{args.repeat}", file=sys.stderr)
            for name in order if rep % 2 == 0 else order[::-1]:
                crm = crms[name]
                for scenario in SCENARIOS:
                    sample = measure_tool(crm, w, counter, scenario, args.calls)
                    tool_runs[scenario.label][name].append(summarize(sample))
                reset_runs[name].append(summarize(measure_reset(crm, w, counter, args.items)))
            truncate_runs.append(
                summarize([reseeder.truncate_and_load() for _ in range(args.reseeds)])
            )
            recreate_runs.append(
                summarize([reseeder.recreate_and_load() for _ in range(args.reseeds)])
            )

        tools: dict[str, Any] = {}
        for scenario in SCENARIOS:
            runs = tool_runs[scenario.label]
            ratios = [
                pg["p50"] / mem["p50"]
                for mem, pg in zip(runs["memory"], runs["postgres"], strict=True)
            ]
            tools[scenario.label] = {
                "tool": scenario.tool,
                "fails": scenario.fails,
                "unit": "us",
                "memory": over_repeats(runs["memory"]),
                "postgres": over_repeats(runs["postgres"]),
                "ratio_p50": statistics.median(ratios),
            }
        pg_reset = over_repeats(reset_runs["postgres"])
        pg_reset["target_ms"] = P4_TARGET_MS
        pg_reset["verdict"] = "PASS" if pg_reset["p50"] <= P4_TARGET_MS else "FAIL"
        pg_reset["target_id"] = "P4"
        isolation: dict[str, Any] = {
            "unit": "ms",
            "writes_per_item": WRITES_PER_ITEM,
            "postgres_reset": pg_reset,
            "memory_reset": over_repeats(reset_runs["memory"]),
            "postgres_truncate_reseed": over_repeats(truncate_runs),
            "postgres_recreate_reseed": over_repeats(recreate_runs),
            "ratio_truncate_vs_reset": statistics.median(
                t["p50"] / r["p50"]
                for t, r in zip(truncate_runs, reset_runs["postgres"], strict=True)
            ),
            "ratio_recreate_vs_reset": statistics.median(
                t["p50"] / r["p50"]
                for t, r in zip(recreate_runs, reset_runs["postgres"], strict=True)
            ),
        }
        return {
            "benchmark": "bench_crm",
            "targets": ["P4"],
            "machine": machine_info(server),
            "config": {
                "repeat": args.repeat,
                "calls_per_tool": args.calls,
                "batch": BATCH,
                "items": args.items,
                "reseeds": args.reseeds,
                "seed_counts": seed.counts(),
            },
            "tools": tools,
            "isolation": isolation,
            "wall_seconds": time.perf_counter() - started,
        }
    finally:
        if reseeder is not None:
            reseeder.close()
        for store in stores.values():
            store.close()
        try:
            for name in created:
                try:
                    drop_database(server.admin_url, name)
                except PostgresProviderError as exc:
                    print(f"bench_crm: warning: {exc}", file=sys.stderr)
        finally:
            server.stop()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="CRM tool latency (memory and PostgreSQL) and per-item isolation (P4)."
    )
    parser.add_argument("--repeat", type=int, default=5, help="number of repeats (default 5)")
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="JSON results file (default benchmarks/results/bench_crm.json)",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=None,
        help="use this PostgreSQL server (needs CREATEDB) instead of starting the embedded one",
    )
    parser.add_argument(
        "--calls", type=int, default=500, help="calls per tool per store per repeat (default 500)"
    )
    parser.add_argument(
        "--items", type=int, default=300, help="isolation items per store per repeat (default 300)"
    )
    parser.add_argument(
        "--reseeds", type=int, default=5, help="re-seeds of each kind per repeat (default 5)"
    )
    args = parser.parse_args(argv)
    for name in ("repeat", "calls", "items", "reseeds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import psycopg

    try:
        results = run(args)
    except (PostgresProviderError, ConnectionError, psycopg.Error, OSError) as exc:
        print(f"bench_crm: cannot run: {exc}", file=sys.stderr)
        return 2
    print(render(results))
    output: Path = args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    try:
        shown = output.resolve().relative_to(Path.cwd())
    except ValueError:
        shown = output
    print(f"results written to {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
