"""What every model call of a process shares: SDK clients, rate limits, 429 pauses.

With ``--crm-concurrency`` a process runs several conversations at once, each with its
own agent instance; what must be shared therefore lives here, at module level, keyed by
endpoint, never on an agent:

* **one SDK client** per (provider, base URL, key, timeout, SDK retries): one connection
  pool per process. :func:`shared_client` builds it once (thread-safe);
  ``Backend.close()`` leaves it open for the others, :func:`close_shared_clients` closes
  them all (the plugin calls it when pytest ends; ``atexit`` otherwise);
* **one limiter** per (provider, base URL, model, limits): requests per minute and tokens
  per minute as evenly spaced slots (no bursts: providers enforce their per-minute limits
  over shorter intervals too), and at most ``max_connections`` requests in flight. A
  request's tokens are estimated before it is sent (request bytes / 4) and the estimate is
  replaced by the usage the API reported;
* **one pause** per (provider, base URL): a 429 with ``Retry-After: R`` stops every
  request to that endpoint — from any thread, the SDK's own retries included — for R
  seconds (at most :data:`MAX_PAUSE_S`).

It all runs in the HTTP client's event hooks, in the thread that sends the request; the
call being made (its limiter, deadline and request count) is a thread-local
:class:`CallContext` set by ``Backend.complete``.
"""

from __future__ import annotations

import atexit
import hashlib
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from pytest_crmbench.agents.response_cache import forget_caches

#: A Retry-After longer than this pauses the endpoint only this long (the calls that
#: cannot wait give up at once anyway; a stale pause must not outlive a test server).
MAX_PAUSE_S = 300.0
#: Tokens estimated per byte of a request body, before the API reports the real usage.
TOKENS_PER_BYTE = 0.25
DEFAULT_SDK_RETRY_AFTER_CAP_S = 10.0


def fingerprint(*secrets: str | None) -> str:
    """A short digest standing for credentials in registry keys (never the key itself)."""
    return hashlib.sha256("\x00".join(s or "" for s in secrets).encode()).hexdigest()[:16]


# == limits ==========================================================================
@dataclass(frozen=True)
class Limits:
    """Per-process limits for one model: ``None`` is unlimited."""

    rpm: int | None = None
    tpm: int | None = None
    max_connections: int | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.rpm, self.tpm, self.max_connections))


class Pacer:
    """Evenly spaced slots for ``per_minute`` units: a request of ``n`` units starts no
    earlier than the previous one's start + its units × 60 / ``per_minute``."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 60.0 / per_minute
        self._clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self, units: float) -> float:
        """The monotonic time at which a request of ``units`` may start (reserved now)."""
        with self._lock:
            start = max(self._clock(), self._next)
            self._next = start + units * self.interval
            return start

    def adjust(self, units: float) -> None:
        """Correct the last estimate by ``units`` (negative gives back what was unused)."""
        with self._lock:
            self._next = max(self._clock(), self._next + units * self.interval)


class Limiter:
    """The shared limits of one model (see the module docstring)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.rpm = Pacer(limits.rpm) if limits.rpm else None
        self.tpm = Pacer(limits.tpm) if limits.tpm else None
        self.slots = (
            threading.BoundedSemaphore(limits.max_connections) if limits.max_connections else None
        )


# == 429 pauses ======================================================================
class Endpoint:
    """One API endpoint of the process: its Retry-After pause, seen by every caller."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._until = 0.0
        self._cond = threading.Condition()

    def pause(self, seconds: float) -> None:
        """Nobody sends to this endpoint for ``seconds`` (an earlier, longer pause stays)."""
        with self._cond:
            self._until = max(self._until, time.monotonic() + min(seconds, MAX_PAUSE_S))
            self._cond.notify_all()

    def remaining(self) -> float:
        with self._cond:
            return max(0.0, self._until - time.monotonic())

    def wait(self, deadline: float | None = None) -> None:
        """Block while the endpoint is paused, but not past ``deadline`` (monotonic)."""
        with self._cond:
            while True:
                now = time.monotonic()
                end = self._until if deadline is None else min(self._until, deadline)
                if now >= end:
                    return
                self._cond.wait(end - now)


# == the call in progress (thread-local) ==============================================
@dataclass
class CallContext:
    """One model call in progress in this thread, as the HTTP hooks see it."""

    limiter: Limiter | None = None
    deadline: float | None = None  # monotonic; waits for a pause stop there
    retry_after_cap_s: float = DEFAULT_SDK_RETRY_AFTER_CAP_S
    requests: int = 0  # HTTP requests sent (SDK retries included)
    estimate: float = 0.0  # tokens estimated for the last request sent
    holding: bool = False  # a connection slot is held by this thread
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def release(self) -> None:
        """Give back the connection slot, if held (after a reply, or a failed request)."""
        if self.holding and self.limiter is not None and self.limiter.slots is not None:
            self.holding = False
            self.limiter.slots.release()


_local = threading.local()


def current_call() -> CallContext | None:
    return getattr(_local, "call", None)


@contextmanager
def model_call(context: CallContext) -> Iterator[CallContext]:
    """Make ``context`` this thread's call while the block runs; its slot is freed after."""
    previous = current_call()
    _local.call = context
    try:
        yield context
    finally:
        context.release()
        _local.call = previous


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _estimate(request: Any) -> float:
    try:
        return len(request.content) * TOKENS_PER_BYTE
    except Exception:  # a streamed body cannot be measured: count nothing
        return 0.0


def parse_retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds) headers, if any."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return float(ms) / 1000
    except (TypeError, ValueError):
        pass
    try:
        value = headers.get("retry-after")
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def hooks_for(endpoint: Endpoint) -> dict[str, list[Callable[[Any], None]]]:
    """httpx event hooks that make every request of a client obey the shared limits."""

    def on_request(request: Any) -> None:
        call = current_call()
        deadline = call.deadline if call is not None else None
        limiter = call.limiter if call is not None else None
        slots = limiter.slots if limiter is not None else None
        # A request that timed out kept its slot: the SDK's retry of it reuses it.
        if call is not None and slots is not None and not call.holding:
            slots.acquire()
            call.holding = True
        endpoint.wait(deadline)
        if limiter is not None:
            if limiter.rpm is not None:
                _sleep_until(limiter.rpm.reserve(1))
            if limiter.tpm is not None and call is not None:
                call.estimate = _estimate(request)
                _sleep_until(limiter.tpm.reserve(call.estimate))
            endpoint.wait(deadline)  # a pause that began while this request waited
        if call is not None:
            call.requests += 1

    def on_response(response: Any) -> None:
        call = current_call()
        wait = parse_retry_after(response.headers)
        if response.status_code == 429 and wait is not None and wait > 0:
            endpoint.pause(wait)
        cap = call.retry_after_cap_s if call is not None else DEFAULT_SDK_RETRY_AFTER_CAP_S
        if wait is not None and wait > cap:
            # A Retry-After longer than the cap: the SDK must not wait it out; we decide.
            response.headers["x-should-retry"] = "false"
        if call is not None and call.holding:
            response.read()  # the whole answer is in before the slot goes to another call
            call.release()

    return {"request": [on_request], "response": [on_response]}


# == process registries ==============================================================
_lock = threading.RLock()  # re-entrant: a client factory asks for its endpoint
_clients: dict[Hashable, Any] = {}
_endpoints: dict[Hashable, Endpoint] = {}
_limiters: dict[Hashable, Limiter] = {}


def endpoint(provider: str, base_url: str | None) -> Endpoint:
    key = (provider, base_url or "")
    with _lock:
        found = _endpoints.get(key)
        if found is None:
            found = _endpoints[key] = Endpoint(f"{provider} {base_url or '(default)'}")
        return found


def limiter(provider: str, base_url: str | None, model: str, limits: Limits) -> Limiter | None:
    """The process's limiter of one model with these limits (None when unlimited)."""
    if not limits:
        return None
    key = (provider, base_url or "", model, limits)
    with _lock:
        found = _limiters.get(key)
        if found is None:
            found = _limiters[key] = Limiter(limits)
        return found


def shared_client(key: Hashable, factory: Callable[[], Any]) -> Any:
    """The process's SDK client for ``key``, built by ``factory`` the first time only."""
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = factory()
        return client


def shared_client_count() -> int:
    with _lock:
        return len(_clients)


def close_shared_clients() -> None:
    """End of a session: close every shared client, forget pauses and limiters, and start
    the response caches' occurrence counts over (a next in-process session replays)."""
    forget_caches()
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
        _endpoints.clear()
        _limiters.clear()
    for client in clients:
        close = getattr(client, "close", None)
        if callable(close):
            with suppress(Exception):  # closing at exit must not raise
                close()


atexit.register(close_shared_clients)
