"""Injectable time and identity.

Datasets fix the CRM's "today" so that verdicts do not rot as the calendar moves, and
ids are derived deterministically per conversation so that runs are reproducible.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from typing import Protocol


class Clock(Protocol):
    """Where the CRM reads "today" (close-date rule) and "now" (timestamps)."""

    def today(self) -> date: ...

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock, for interactive use."""

    def today(self) -> date:
        return datetime.now(UTC).date()

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock frozen at a reference date (timestamps at a fixed time of that day)."""

    def __init__(self, today: date, at: time = time(9, 0)) -> None:
        self._today = today
        self._now = datetime.combine(today, at, tzinfo=UTC)

    def today(self) -> date:
        return self._today

    def now(self) -> datetime:
        return self._now


class IdFactory(Protocol):
    """Makes the ids of records the CRM creates; callers never choose ids."""

    def new_id(self) -> str: ...


class RandomIds:
    """Real UUIDv4 ids, for interactive use."""

    def new_id(self) -> str:
        return str(uuid.uuid4())


ID_NAMESPACE = uuid.UUID("2b0c1f0e-6a53-4d1f-9a1e-5f8d3c7b9e41")


class DeterministicIds:
    """UUIDv5 of a namespace, a scope (e.g. the conversation id) and a counter."""

    def __init__(self, scope: str, namespace: uuid.UUID = ID_NAMESPACE) -> None:
        self._scope = scope
        self._namespace = namespace
        self._counter = 0

    def new_id(self) -> str:
        self._counter += 1
        return str(uuid.uuid5(self._namespace, f"{self._scope}:{self._counter}"))
