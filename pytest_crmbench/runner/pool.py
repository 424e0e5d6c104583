"""Conversations in flight: up to N conversations of one process at once, without pytest.

A model answers in seconds, so a benchmark run is mostly waiting; threads let one
process wait on many conversations instead of one. Each thread of the pool is a *slot*
that owns, for the whole run, a runner over a store of its own (a memory store, or a
PostgreSQL database of its own): conversations in flight never share a store, a
connection or a transaction, so none can block on another's uncommitted row (a unique
email, say) or see its writes. Every conversation gets a fresh agent from
``make_agent``, so agents keep the synchronous protocol and need no locks of their own
(what they share at module level — an HTTP client, a rate limiter — must be
thread-safe; the built-in LLM agents' is).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from pytest_crmbench.agents.base import Agent
from pytest_crmbench.dataset import answer_key
from pytest_crmbench.dataset.model import Conversation
from pytest_crmbench.runner.records import ItemResult, read_answer_key


class RunsConversations(Protocol):
    """A :class:`~pytest_crmbench.runner.Runner` or its Arc front."""

    def run(self, conv: Conversation, agent: Agent, *, trial: int | None = None) -> ItemResult: ...


#: Builds slot ``k``'s runner (its own store), in that slot's thread, on first use.
RunnerFactory = Callable[[int], RunsConversations]


class ConversationPool:
    """``pool.submit(conv, trial, work=n)`` → a future of the conversation's result (or
    of the runner's exception: ``InfrastructureError``, ``DatasetDefect``…, raised by
    ``result()`` as the serial run would have raised it).

    A free slot takes the waiting conversation with the most ``work`` (expected model
    calls), the earliest submitted among equals: longest first, so the last
    conversations of a run are short ones that finish together instead of one long one
    running alone at the end. :meth:`hurry` puts one conversation first (the one its
    caller is blocked on).
    """

    def __init__(self, size: int, make_runner: RunnerFactory, make_agent: Callable[[], Agent]):
        if size < 1:
            raise ValueError("a pool needs at least one slot")
        self.size = size
        self._make_runner = make_runner
        self._make_agent = make_agent
        self._executor = ThreadPoolExecutor(size, thread_name_prefix="crmbench-slot")
        self._local = threading.local()  # .runner: the slot of this thread
        self._lock = threading.Lock()
        self._slots = 0
        # Waiting conversations: a heap of (-priority, order, future); an entry whose
        # future is no longer in _waiting is stale (taken, or re-pushed by hurry).
        self._heap: list[tuple[int, int, Future[ItemResult]]] = []
        self._waiting: dict[Future[ItemResult], tuple[Conversation, int | None]] = {}
        self._order = itertools.count()

    def submit(
        self, conv: Conversation, trial: int | None = None, *, work: int = 0
    ) -> Future[ItemResult]:
        future: Future[ItemResult] = Future()
        with self._lock:
            self._waiting[future] = (conv, trial)
            heapq.heappush(self._heap, (-work, next(self._order), future))
        self._executor.submit(self._next)  # one task per conversation: it takes the best
        return future

    def hurry(self, future: Future[ItemResult]) -> None:
        """Run ``future``'s conversation next, if it has not started."""
        with self._lock:
            if future in self._waiting:
                heapq.heappush(self._heap, (-(1 << 62), next(self._order), future))

    def _next(self) -> None:
        with self._lock:
            while self._heap:
                _, _, future = heapq.heappop(self._heap)
                job = self._waiting.pop(future, None)
                if job is not None:
                    break
            else:
                return  # cancelled by shutdown
        if not future.set_running_or_notify_cancel():
            return  # cancelled by its caller
        try:
            future.set_result(self._run(*job))
        except BaseException as exc:  # the caller re-raises it from result()
            future.set_exception(exc)

    def _runner(self) -> RunsConversations:
        runner: RunsConversations | None = getattr(self._local, "runner", None)
        if runner is None:
            with self._lock:
                slot, self._slots = self._slots, self._slots + 1
            runner = self._make_runner(slot)
            self._local.runner = runner
        return runner

    def _run(self, conv: Conversation, trial: int | None) -> ItemResult:
        runner = self._runner()
        read_before = len(answer_key.thread_violations())
        with answer_key.agent_code():  # the agent's constructor is agent code
            agent = self._make_agent()
        try:
            result = runner.run(conv, agent, trial=trial)
        finally:
            close = getattr(agent, "close", None)
            if callable(close):
                with contextlib.suppress(Exception), answer_key.agent_code():
                    close()
        read = answer_key.thread_violations()[read_before:]
        if read:  # while the agent was built or ran: the item is failed, as in a serial run
            result = read_answer_key(result, read)
        return result

    @property
    def slots(self) -> int:
        """Slots opened so far (each with its own store)."""
        return self._slots

    def shutdown(self, *, cancel: bool = True) -> None:
        """Drop what has not started (with ``cancel``) and wait for what has."""
        if cancel:
            with self._lock:
                dropped = list(self._waiting)
                self._waiting.clear()
                self._heap.clear()
            for future in dropped:
                future.cancel()
        self._executor.shutdown(wait=True, cancel_futures=cancel)
