"""``--crm-concurrency``: conversations in flight give the serial run's verdicts, and
conversations in flight never block on, or see, each other's writes."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from plugin_support.project import (
    BASE,
    MEMORY,
    SNAPSHOT_DATASET,
    make_project,
    snapshot_lines,
    stream_rows,
)

from pytest_crmbench.agents.scripted import NoopAgent, ReplayAgent
from pytest_crmbench.backends import open_memory_store, open_postgres_store
from pytest_crmbench.crm.seed import SeedWorld
from pytest_crmbench.crm.store import Store
from pytest_crmbench.dataset.loader import load_dataset
from pytest_crmbench.dataset.model import Conversation
from pytest_crmbench.inflight import in_flight_scheduling, tail_spare
from pytest_crmbench.items import conversation_cases
from pytest_crmbench.runner import Runner
from pytest_crmbench.runner.pool import ConversationPool

SLOTS = 4


def _conversation(conv_id: str) -> Conversation:
    return next(c for c in load_dataset([SNAPSHOT_DATASET]).conversations if c.id == conv_id)


class WaitsWithTheWrite(ReplayAgent):
    """The oracle, holding each turn's reply until every conversation in flight has made
    its calls: they all hold their uncommitted writes at the same moment. A store shared
    between them would block one insert behind another's unique key (and the barrier
    would break) or refuse the second email as taken."""

    def __init__(self, barrier: threading.Barrier) -> None:
        super().__init__()
        self.barrier = barrier

    def respond(self, message: str, tools: Any) -> str:
        reply = super().respond(message, tools)
        self.barrier.wait()
        return reply


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def slot_stores(
    request: pytest.FixtureRequest, pg_servers: Any, world: SeedWorld
) -> Iterator[Callable[[int], Store]]:
    """A factory of slot stores: memory, or on PostgreSQL a schema per slot in ONE
    database (what the plugin does)."""
    opened: list[Store] = []
    url = pg_servers.url("postgres", "crmbench_test_slots") if request.param != "memory" else ""

    def open_slot(slot: int) -> Store:
        if request.param == "memory":
            store: Store = open_memory_store(world)
        else:
            store = open_postgres_store(url, world, schema=f"crm_s{slot}")
        opened.append(store)
        return store

    yield open_slot
    for store in opened:
        store.close()


def test_conversations_in_flight_write_the_same_unique_email_without_waiting(
    slot_stores: Callable[[int], Store], world: SeedWorld
) -> None:
    # CONV-0005 creates a client (a unique email) in turn 1: four copies at once, each
    # holding its row uncommitted while the others insert the same email.
    conv = _conversation("CONV-0005")
    barrier = threading.Barrier(SLOTS, timeout=30)
    pool = ConversationPool(
        SLOTS, lambda slot: Runner(slot_stores(slot), world), lambda: WaitsWithTheWrite(barrier)
    )
    try:
        futures = [pool.submit(conv, trial) for trial in range(1, SLOTS + 1)]
        results = [f.result(timeout=120) for f in futures]
    finally:
        pool.shutdown()
    assert pool.slots == SLOTS
    assert not barrier.broken  # nobody waited on another's row
    for result in results:
        assert result["passed"], result["first_failure"]
        created = result["turns"][0]["calls"][0]
        assert created["tool"] == "create_new_client" and created["ok"]
    # Same deterministic ids in every slot: each saw only its own world.
    ids = {json.dumps(r["turns"][0]["calls"][0]["result"], sort_keys=True) for r in results}
    assert len(ids) == 1


def test_a_shared_store_is_caught_by_the_same_check(world: SeedWorld) -> None:
    """The control: the same four conversations on ONE store cross-talk (the email is
    taken by a neighbour), so the test above would fail for a shared-store design."""
    conv = _conversation("CONV-0005")
    shared = open_memory_store(world)
    barrier = threading.Barrier(SLOTS, timeout=30)
    pool = ConversationPool(
        SLOTS, lambda slot: Runner(shared, world), lambda: WaitsWithTheWrite(barrier)
    )
    try:
        outcomes = []
        for future in [pool.submit(conv, t) for t in range(1, SLOTS + 1)]:
            try:
                outcomes.append(future.result(timeout=120)["passed"])
            except Exception:  # the neighbour's reset pulled the seed from under it
                outcomes.append(False)
    finally:
        pool.shutdown()
    assert not all(outcomes)


def test_the_pool_gives_the_serial_verdicts(world: SeedWorld) -> None:
    convs = load_dataset([SNAPSHOT_DATASET]).conversations
    serial = Runner(open_memory_store(world), world)
    for make in (ReplayAgent, NoopAgent):
        expected = [serial.run(c, make()) for c in convs]
        pool = ConversationPool(SLOTS, lambda slot: Runner(open_memory_store(world), world), make)
        try:
            got = [f.result() for f in [pool.submit(c) for c in convs]]
        finally:
            pool.shutdown()
        assert [_verdict(r) for r in got] == [_verdict(r) for r in expected]


def test_an_agent_reading_the_answer_key_is_charged_alone(world: SeedWorld) -> None:
    """The answer-key guard is per thread: the cheating conversation is flagged, the
    honest ones running beside it are not."""
    convs = load_dataset([SNAPSHOT_DATASET]).conversations[:6]
    cheat_on = convs[2].turns[0].user

    class PeeksOnce(ReplayAgent):
        def respond(self, message: str, tools: Any) -> str:
            if message == cheat_on:
                SNAPSHOT_DATASET.read_text(encoding="utf-8")
            return super().respond(message, tools)

    from pytest_crmbench.dataset import answer_key

    answer_key.protect(SNAPSHOT_DATASET)
    pool = ConversationPool(3, lambda slot: Runner(open_memory_store(world), world), PeeksOnce)
    try:
        results = [f.result() for f in [pool.submit(c) for c in convs]]
    finally:
        pool.shutdown()
    flagged = [r["case_id"] for r in results if "answer key" in str(r.get("error") or "")]
    assert flagged == [convs[2].id]


class RecordsOrder:
    """A slot's runner that notes which conversation it ran, and can hold the first."""

    def __init__(self, ran: list[str], gate: threading.Event) -> None:
        self.ran, self.gate = ran, gate

    def run(self, conv: Conversation, agent: Any, *, trial: int | None = None) -> Any:
        if not self.ran:
            assert self.gate.wait(30)
        self.ran.append(conv.id)
        return {"case_id": conv.id}


def test_a_free_slot_takes_the_longest_waiting_conversation_and_hurried_ones_first() -> None:
    convs = load_dataset([SNAPSHOT_DATASET]).conversations[:6]
    ran: list[str] = []
    gate = threading.Event()
    pool = ConversationPool(1, lambda slot: RecordsOrder(ran, gate), NoopAgent)
    try:
        first = pool.submit(convs[0], work=1)  # occupies the one slot until the gate opens
        while not first.running():
            threading.Event().wait(0.01)
        futures = [pool.submit(c, work=w) for c, w in zip(convs[1:], (2, 9, 5, 9, 1), strict=True)]
        pool.hurry(futures[4])  # the caller waits for this one: before any other
        pool.hurry(first)  # already running: nothing to do
        gate.set()
        for future in [first, *futures]:
            future.result(timeout=30)
    finally:
        pool.shutdown()
    # hurried, then longest first (equal work: in submission order)
    assert ran == [convs[i].id for i in (0, 5, 2, 4, 3, 1)]


def test_shutdown_cancels_the_waiting_conversations() -> None:
    convs = load_dataset([SNAPSHOT_DATASET]).conversations[:4]
    ran: list[str] = []
    gate = threading.Event()
    pool = ConversationPool(1, lambda slot: RecordsOrder(ran, gate), NoopAgent)
    first = pool.submit(convs[0])
    rest = [pool.submit(c) for c in convs[1:]]
    while not first.running():
        threading.Event().wait(0.01)
    threading.Timer(0.2, gate.set).start()
    pool.shutdown(cancel=True)
    assert first.result(timeout=30) == {"case_id": convs[0].id}
    assert all(f.cancelled() for f in rest) and ran == [convs[0].id]


def _verdict(result: dict[str, Any]) -> Any:
    """What must not depend on concurrency: the verdicts and what the agent did."""
    return (
        result["case_id"],
        result.get("trial"),
        result["passed"],
        result["outcome"],
        [
            (t["passed"], t["reasons"], [(c["tool"], c["args"], c["ok"]) for c in t["calls"]])
            for t in result.get("turns", [])
        ],
    )


# == through pytest ==================================================================
def _run(
    pytester: pytest.Pytester, *args: str, results: str, subprocess: bool = False
) -> list[dict[str, Any]]:
    argv = (*args, "-p", "no:randomly", f"--crm-results={results}", "--crm-report=none")
    run = pytester.runpytest_subprocess if subprocess else pytester.runpytest
    outcome = run(*argv)
    assert outcome.ret in (0, 1), outcome.stdout.str()[-3000:]
    return sorted(stream_rows(pytester.path / results), key=lambda r: r["test_id"])


STORES = [
    pytest.param(MEMORY, False, id="memory"),
    pytest.param(
        ("--crm-backend", "postgres", *BASE), True, id="postgres", marks=pytest.mark.postgres
    ),
]


@pytest.mark.parametrize(("store", "subprocess"), STORES)
def test_concurrency_gives_the_serial_run_item_for_item(
    pytester: pytest.Pytester, store: tuple[str, ...], subprocess: bool
) -> None:
    make_project(pytester)
    agent = ("--agent", "crm_agents:DropsSomeCalls")
    serial = _run(pytester, *store, *agent, results="serial.jsonl", subprocess=subprocess)
    inflight = _run(
        pytester,
        *store,
        *agent,
        "--crm-concurrency=4",
        results="inflight.jsonl",
        subprocess=subprocess,
    )
    assert len(serial) == len(inflight) == 20
    assert {r["passed"] for r in serial} == {True, False}  # mixed verdicts to compare
    assert [_verdict(r) for r in inflight] == [_verdict(r) for r in serial]


def test_conversations_overlap_with_and_without_xdist(pytester: pytest.Pytester) -> None:
    make_project(pytester, golden=False)
    agent = ("--agent", "crm_agents:CountsInFlight")
    serial = _run(pytester, *MEMORY, *agent, results="serial.jsonl", subprocess=True)
    assert Path(pytester.path / "in_flight.txt").read_text() == "1"
    inflight = _run(
        pytester, *MEMORY, *agent, "--crm-concurrency=4", results="c4.jsonl", subprocess=True
    )
    assert 2 <= int(Path(pytester.path / "in_flight.txt").read_text()) <= 4
    both = _run(
        pytester,
        *MEMORY,
        *agent,
        "-n",
        "2",
        "--crm-concurrency=3",
        results="n2c3.jsonl",
        subprocess=True,
    )
    assert 2 <= int(Path(pytester.path / "in_flight.txt").read_text()) <= 3  # per worker
    assert [_verdict(r) for r in inflight] == [_verdict(r) for r in serial]
    assert [_verdict(r) for r in both] == [_verdict(r) for r in serial]
    assert {r["passed"] for r in serial} == {True}


@pytest.mark.parametrize(
    ("xdist", "overtaken"), [((), 11), (("-n", "1"), 8)], ids=["plain", "xdist"]
)
def test_slots_keep_working_while_pytest_waits_for_one_slow_conversation(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    xdist: tuple[str, ...],
    overtaken: int,
) -> None:
    """12 conversations, 2 slots (8 sent ahead at most), and pytest's first item (the
    longest) is slow: while pytest waits for it, the other slot runs the others, sent as
    room frees up (before: 7), and none twice. Under xdist, the worker runs all it holds
    (the controller sends the last 3 as the worker reports items)."""
    root = make_project(pytester, golden=False)
    cases, _ = conversation_cases((str(root / "cases" / "conversations.jsonl"),), 1)
    head = max(cases, key=lambda c: c.work())  # pytest's first: the longest, first of equals
    assert head.conversation is not None
    monkeypatch.setenv("CRM_SLOW_MESSAGE", head.conversation.turns[0].user)
    _run(
        pytester,
        *MEMORY,
        *xdist,
        "--agent",
        "crm_agents:OneIsSlow",
        "--crm-concurrency=2",
        results="r.jsonl",
        subprocess=True,
    )
    assert (pytester.path / "overtaken.txt").read_text() == str(overtaken)
    assert not (pytester.path / "twice.txt").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--crm-concurrency=0",), "--crm-concurrency: 0 is out of range"),
        (
            ("--crm-concurrency=4", "--crm-feedback=student"),
            "--crm-concurrency 4: an ordered run",
        ),
    ],
)
def test_concurrency_usage_errors(
    pytester: pytest.Pytester, args: tuple[str, ...], message: str
) -> None:
    make_project(pytester)
    result = pytester.runpytest(*MEMORY, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_an_unreachable_agent_stops_a_concurrent_run_as_a_serial_one(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester, golden=False)  # 12 conversations
    stopped = pytester.runpytest_subprocess(
        *MEMORY,
        "-p",
        "no:randomly",
        "--crm-report=r.json",
        "--agent",
        "crm_agents:Unreachable",
        "--crm-concurrency=4",
        "--crm-results=r.jsonl",
    )
    assert stopped.ret == pytest.ExitCode.INTERRUPTED
    assert "crmbench stopped the run: 3 items in a row could not be judged" in stopped.stdout.str()
    report = json.loads((pytester.path / "r.json").read_text())
    assert report["crmbench"]["summary"]["errors"] == 3 and report["crmbench"]["stopped"]
    resumed = pytester.runpytest_subprocess(
        *MEMORY,
        "--agent",
        "crm_agents:Unreachable",
        "--crm-concurrency=4",
        "--crm-results=r.jsonl",
        "--crm-resume",
        "--crm-stop-after-errors=0",
    )
    resumed.assert_outcomes(errors=12)


def test_the_claude_agent_in_flight_shares_one_client_and_overlaps_its_requests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the real Anthropic SDK against the fake server: the same verdicts as a
    serial run, requests of several conversations at the server at once."""
    from pytest_crmbench.fakemodel import FakeModelServer, RouterPolicy, load_oracle

    make_project(pytester, golden=False, agents=False)
    oracle = load_oracle([str(pytester.path / "cases" / "conversations.jsonl")], [])
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-a-real-key-inflight")
    with FakeModelServer(RouterPolicy(oracle), latency=0.05) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)
        agent = ("--agent", "claude")
        serial = _run(pytester, *MEMORY, *agent, results="serial.jsonl", subprocess=True)
        assert server.stats_dict()["max_in_flight"] == 1
        server.reset_stats()
        inflight = _run(
            pytester,
            *MEMORY,
            *agent,
            "--crm-concurrency=6",
            results="inflight.jsonl",
            subprocess=True,
        )
        assert 2 <= server.stats_dict()["max_in_flight"] <= 6
    assert {r["passed"] for r in serial} == {True}
    assert [_verdict(r) for r in inflight] == [_verdict(r) for r in serial]


@pytest.mark.parametrize("indent", [(), ("--json-report-indent=2",)], ids=["packed", "indented"])
def test_the_report_of_an_xdist_run_holds_every_item_record(
    pytester: pytest.Pytester, indent: tuple[str, ...]
) -> None:
    """pytest-json-report asks for metadata on the worker only: the controller fills
    each item's record in from what it collected (it used to leave none)."""
    from plugin_support.project import load_report, metadata

    make_project(pytester, golden=False)
    result = pytester.runpytest_subprocess(
        *MEMORY,
        "-p",
        "no:randomly",
        "-n",
        "2",
        "--crm-concurrency=2",
        "--crm-report=r.json",
        *indent,
    )
    assert result.ret == 0, result.stdout.str()[-2000:]
    records = metadata(load_report(pytester.path / "r.json"))
    assert len(records) == 12
    assert all(r["passed"] and r["turns"] for r in records.values())


def test_the_header_says_how_many_conversations_are_in_flight(pytester: pytest.Pytester) -> None:
    make_project(pytester, golden=False)
    shown = pytester.runpytest(*MEMORY, "--co", "--crm-concurrency=3").stdout.str()
    assert "crmbench: agent=replay backend=memory trials=1 concurrency=3 per process" in shown
    serial = pytester.runpytest(*MEMORY, "--co").stdout.str()
    assert "trials=1" in serial and "concurrency" not in serial


def test_a_plain_concurrent_run_starts_the_longest_conversations_first(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester)
    work = {
        json.loads(line)["id"]: sum(1 + len(t["expected_calls"]) for t in json.loads(line)["turns"])
        for line in snapshot_lines()
    }

    def order(*args: str) -> list[str]:
        result = pytester.runpytest(*MEMORY, "--co", "-q", *args)
        return [x for x in result.outlines if "::" in x]

    serial, inflight = order(), order("--crm-concurrency=4")
    assert sorted(serial) == sorted(inflight) and serial != inflight
    cases = [x for x in inflight if x.startswith("cases/")]
    assert inflight[: len(cases)] == cases  # module by module, as before
    ids = [x.rpartition("[")[2][: len("CONV-0000")] for x in cases]
    assert [work[i] for i in ids] == sorted((work[i] for i in ids), reverse=True)
    # equal work keeps the collection order
    for a, b in itertools.pairwise(ids):
        if work[a] == work[b]:
            assert serial.index(cases[ids.index(a)]) < serial.index(cases[ids.index(b)])


class FakeWorker:
    """What the xdist scheduler sees of a worker."""

    def __init__(self, name: str, log: list[int]) -> None:
        self.gateway = type("Gateway", (), {"id": name})()
        self.log = log  # every item sent to any worker, in order
        self.shutting_down = False

    def send_runtest_some(self, indices: list[int]) -> None:
        self.log.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


def _scheduled(
    pytester: pytest.Pytester,
    concurrency: int,
    collection: list[str],
    work_of: Callable[[str], int],
) -> tuple[Any, list[FakeWorker], list[int]]:
    """The plugin's xdist scheduler over two fake workers, after its first sends; and
    the log of every item sent, in order."""
    config = pytester.parseconfig("--tx=2*popen")
    sched = in_flight_scheduling(config, None, concurrency, work_of)
    log: list[int] = []
    workers = [FakeWorker("gw0", log), FakeWorker("gw1", log)]
    for worker in workers:
        sched.add_node(worker)
        sched.add_node_collection(worker, collection)
    sched.schedule()
    return sched, workers, log


def test_xdist_gets_the_longest_first_and_the_last_ones_as_slots_free(
    pytester: pytest.Pytester,
) -> None:
    concurrency = 3
    collection = [f"{m}.py::t[{i}]" for m in ("a", "b") for i in range(60)]
    work = {nodeid: (7 * n) % 11 for n, nodeid in enumerate(collection)}
    sched, workers, sent_order = _scheduled(pytester, concurrency, collection, work.__getitem__)
    tail_sends = 0
    while any(sched.node2pending[w] for w in workers):
        for worker in workers:  # each worker finishes its oldest item in turn
            if sched.node2pending[worker]:
                left = len(sched.pending)
                sched.mark_test_complete(worker, sched.node2pending[worker][0])
                if 0 < left <= len(workers) * concurrency and len(sched.pending) < left:
                    # the tail: only up to what a worker's slots are about to take
                    assert len(sched.node2pending[worker]) <= concurrency + tail_spare(concurrency)
                    tail_sends += left - len(sched.pending)
                # a worker runs an item once it holds the next: never one alone to wait
                assert len(sched.node2pending[worker]) >= 2 or not sched.pending
    assert tail_sends == len(workers) * concurrency  # the last ones went as slots freed
    assert sorted(sent_order) == list(range(len(collection)))  # each item once
    assert all(w.shutting_down for w in workers)
    by_module = [[collection[i] for i in sent_order if collection[i].startswith(m)] for m in "ab"]
    assert [x for module in by_module for x in module] == [collection[i] for i in sent_order]
    for module in by_module:  # longest first within each module
        assert [work[x] for x in module] == sorted((work[x] for x in module), reverse=True)


def test_a_short_xdist_run_fills_every_slot_at_once(pytester: pytest.Pytester) -> None:
    """Fewer items than slots: all of them are sent at the start (the tail rule must
    not trickle them out)."""
    concurrency = 16
    collection = [f"a.py::t[{i}]" for i in range(24)]
    sched, workers, log = _scheduled(pytester, concurrency, collection, lambda nodeid: 1)
    assert sorted(log) == list(range(24)) and not sched.pending
    assert [len(sched.node2pending[w]) for w in workers] == [12, 12]  # half each
