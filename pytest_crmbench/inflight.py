"""``--crm-concurrency N``: the next items' conversations run ahead, N at a time.

Items stay pytest items, run and reported one by one in pytest's order: when an item
starts, this plugin hands the conversations of the items about to run (in a plain run
the following items; in an xdist worker, the items the scheduler queued for it) to a
:class:`~pytest_crmbench.runner.pool.ConversationPool`, and the item's ``crm_result``
fixture takes its conversation's future instead of running it. Among those sent ahead
the pool starts the longest first (turns plus reference calls), and the one pytest
waits for before any other. Verdicts, reports, the results stream and resume are those
of a serial run; only the order and the waiting change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import pytest

from pytest_crmbench.agents.base import Agent
from pytest_crmbench.crm.seed import SeedWorld, load_seed_world
from pytest_crmbench.crm.store import Store
from pytest_crmbench.items import item_case
from pytest_crmbench.runner.pool import ConversationPool, RunsConversations
from pytest_crmbench.runner.records import ItemResult
from pytest_crmbench.state import STATE

#: Conversations queued or running per slot: results are taken in pytest's order, so a
#: long conversation at the head must not leave the other slots without work.
AHEAD_PER_SLOT = 4
#: How often a wait for one conversation looks for room to send more (seconds).
REFILL_S = 0.02
#: Finished results held per slot at most, waiting for their items' turn (they count
#: no more against the queue above: a slow head item must not starve the slots).
HELD_PER_SLOT = 12


class InFlight:
    """Registered in every process that runs items (a plain run, or each xdist worker)."""

    def __init__(
        self,
        config: pytest.Config,
        size: int,
        make_runner: Callable[[Store, SeedWorld, str], RunsConversations],
        make_agent: Callable[[], Agent],
    ) -> None:
        self.config = config
        self.size = size
        self._make_runner = make_runner  # (store, world, store-name suffix) -> runner
        self._make_agent = make_agent
        self.session: pytest.Session | None = None
        self._pool: ConversationPool | None = None
        self._futures: dict[str, Future[ItemResult]] = {}
        self._positions: dict[str, int] | None = None
        self._cursor = 0  # a plain run: the first item no fill has dealt with yet
        self._worker: Any = None  # xdist's WorkerInteractor, in a worker

    # -- hooks ------------------------------------------------------------------------
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.session = session
        self._worker = next(
            (
                p
                for p in self.config.pluginmanager.get_plugins()
                if type(p).__name__ == "WorkerInteractor" and hasattr(p, "torun")
            ),
            None,
        )

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """A plain run: the longest conversations first, within each test module, so
        that the run does not end with one long conversation alone in flight (an xdist
        controller orders its workers' items the same way)."""
        if hasattr(self.config, "workerinput"):
            return
        work = [_work(item) for item in items]
        order = longest_first([item.nodeid for item in items], work.__getitem__)
        items[:] = [items[i] for i in order]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> None:
        self.fill(item)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        """Drop what was queued but not started (a stopped run), finish what runs."""
        if self._pool is not None:
            self._pool.shutdown(cancel=True)
        self._futures.clear()

    # -- the queue ahead ---------------------------------------------------------------
    def take(self, item: pytest.Item) -> Future[ItemResult] | None:
        """The future of ``item``'s conversation, if it was sent ahead (and now first in
        line, if it has not started: pytest waits for it)."""
        future = self._futures.pop(item.nodeid, None)
        if future is not None and self._pool is not None:
            self._pool.hurry(future)
        return future

    def wait(self, item: pytest.Item, future: Future[ItemResult]) -> ItemResult:
        """``future.result()``, sending more conversations ahead while it is not done:
        pytest is blocked on ``item``, but slots that finish others must not stand idle
        (nor must items that reached an xdist worker meanwhile wait for ``item``)."""
        while True:
            try:
                return future.result(timeout=REFILL_S)
            except FutureTimeout:
                self.fill(item, after=True)

    def fill(self, item: pytest.Item, *, after: bool = False) -> None:
        """Send the conversations of the items about to run, from ``item`` on (``after``
        it: its own was taken already), until ``AHEAD_PER_SLOT`` per slot are queued or
        running (and at most ``HELD_PER_SLOT`` per slot are sent and not yet taken)."""
        session = self.session
        if session is None or session.shouldstop or session.shouldfail:
            return
        unfinished = sum(not f.done() for f in self._futures.values())
        room = min(
            self.size * AHEAD_PER_SLOT - unfinished,
            self.size * HELD_PER_SLOT - len(self._futures),
        )
        if room <= 0:
            return  # (a wait polls this: most polls find no room, so stop before the queue)
        upcoming = self._queued(item) if self._worker is not None else self._following(item)
        for next_item in upcoming:
            if room <= 0:
                break
            if next_item is item and after:
                continue
            if next_item.nodeid in self._futures or not _runs_a_conversation(next_item):
                continue
            case = item_case(next_item)
            conv = case.conversation if case is not None else None  # (rebuilt: once)
            assert case is not None and conv is not None
            self._futures[next_item.nodeid] = self.pool.submit(conv, case.trial, work=case.work())
            room -= 1

    def _queued(self, item: pytest.Item) -> list[pytest.Item]:
        """An xdist worker: ``item`` and the items queued for it so far, in order."""
        assert self.session is not None
        worker, items = self._worker, self.session.items
        with worker.torun.lock() as queued:
            indices = [worker.nextitem_index, *list(queued)[: self.size * AHEAD_PER_SLOT * 2]]
        return [item] + [items[i] for i in indices if isinstance(i, int)]

    def _following(self, item: pytest.Item) -> Iterator[pytest.Item]:
        """A plain run: the items from ``item`` on, in order, each looked at once over the
        run (the cursor moves past an item once the fill has dealt with it)."""
        assert self.session is not None
        items = self.session.items
        if self._positions is None:
            self._positions = {it.nodeid: n for n, it in enumerate(items)}
        start = self._positions.get(item.nodeid)
        if start is None:
            yield item
            return
        self._cursor = max(self._cursor, start)
        while self._cursor < len(items):
            yield items[self._cursor]
            self._cursor += 1

    # -- the pool ----------------------------------------------------------------------
    @property
    def pool(self) -> ConversationPool:
        if self._pool is None:
            state = self.config.stash[STATE]
            world = load_seed_world()

            def make_runner(slot: int) -> RunsConversations:
                store = state.open_store(world, f"_s{slot}")
                return self._make_runner(store, world, f"_s{slot}")

            self._pool = ConversationPool(self.size, make_runner, self._make_agent)
        return self._pool


def longest_first(nodeids: Sequence[str], work: Callable[[int], int]) -> list[int]:
    """Positions of ``nodeids`` in run order: module by module as collected, the most
    ``work`` (of a position) first within each, collection order among equals."""
    modules: dict[str, int] = {}
    key = [
        (modules.setdefault(nodeid.partition("::")[0], len(modules)), -work(n))
        for n, nodeid in enumerate(nodeids)
    ]
    return sorted(range(len(nodeids)), key=key.__getitem__)  # stable


def _work(item: pytest.Item) -> int:
    """Expected work of an item's conversation (0: runs none)."""
    case = item_case(item)
    return case.work() if case is not None and _runs_a_conversation(item) else 0


def _runs_a_conversation(item: pytest.Item) -> bool:
    """An agent item that will run (not skipped by a mark: e.g. an Arc dataset defect)."""
    case = item_case(item)
    if case is None or case.kind == "golden_sandbox":
        return False
    if item.get_closest_marker("skip") is not None:
        return False
    xfail = item.get_closest_marker("xfail")
    return not (xfail is not None and xfail.kwargs.get("run", True) is False)


def tail_spare(concurrency: int) -> int:
    """At the end of an xdist run, a worker's queue is topped up to its slots plus this
    many items (and to its fair share of what is left), no further. The spare keeps its
    slots busy while pytest waits for one item and the controller hears nothing."""
    return max(2, concurrency // 2)


def in_flight_scheduling(
    config: pytest.Config,
    log: Any,
    concurrency: int,
    work_of: Callable[[str], int] = lambda nodeid: 0,
) -> Any:
    """xdist's load scheduling, keeping ``AHEAD_PER_SLOT`` × ``concurrency`` items queued
    on each worker: a worker runs the conversations of its queued items ahead, and
    xdist's own heuristics (two pending items, none more for items slower than 0.1 s)
    would leave its slots idle. The longest conversations (``work_of`` a node id) are
    sent first, within each test module, and the last ones only as a worker's slots are
    about to be free (queued items cannot move between workers): the run does not end
    with one worker's long conversations while the other worker waits."""
    from xdist.scheduler import LoadScheduling  # lazy: only when xdist schedules

    low = AHEAD_PER_SLOT * concurrency + 1
    spare = tail_spare(concurrency)

    class InFlightScheduling(LoadScheduling):  # type: ignore[misc]
        ordered = False

        def _send_tests(self, node: Any, num: int) -> None:
            if not self.ordered and self.collection:
                self.ordered = True
                collection = self.collection
                order = longest_first(collection, lambda i: work_of(collection[i]))
                rank = {i: n for n, i in enumerate(order)}
                self.pending.sort(key=rank.__getitem__)
            super()._send_tests(node, num)

        def schedule(self) -> None:
            super().schedule()
            for node in list(self.node2pending):  # the first chunks too: fill every queue
                self.check_schedule(node)

        def check_schedule(self, node: Any, duration: float = 0) -> None:
            if node.shutting_down:
                return
            if not self.pending:
                node.shutdown()
                return
            if self._tail(node):
                return
            nodes = max(1, len(self.node2pending))
            share = len(self.pending) // nodes
            queued = len(self.node2pending[node])
            if queued >= max(low, share // 4):
                return
            send = max(low, share // 2) - queued
            if len(self.pending) < nodes * low:  # the tail: what is left, split fairly
                send = min(send, -(-len(self.pending) // nodes))
            self._send_tests(node, send)

        def _tail(self, node: Any) -> bool:
            """The last conversations (a slot's worth per worker) go to a worker only
            as its slots are about to be free: its queue is topped up to its slots plus
            :func:`tail_spare`, and to no more than its fair share of all that is left
            (queued or not), so that no worker is left with a queue of them while the
            other's slots stand idle."""
            nodes = len(self.node2pending)
            if len(self.pending) > nodes * concurrency:
                return False
            left = len(self.pending) + sum(len(q) for q in self.node2pending.values())
            fair = -(-left // max(1, nodes))
            # Two at least: a worker runs an item only once it holds the next one.
            room = max(2, min(concurrency + spare, fair)) - len(self.node2pending[node])
            if room > 0:
                self._send_tests(node, room)
            return True

    return InFlightScheduling(config, log)


IN_FLIGHT = pytest.StashKey[InFlight]()
