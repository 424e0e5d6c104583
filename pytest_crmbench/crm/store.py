"""The small interface every store implements beneath the one business-logic layer.

A store keeps records (plain dicts of Python values: str, int, float, date, datetime,
list, None) in eight tables, answers simple conjunctive queries, and offers nested
atomic units. It knows no business rule: :mod:`pytest_crmbench.crm.service` does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pytest_crmbench.crm.entities import Record

Op = Literal["eq", "ieq", "icontains", "ge", "le"]


@dataclass(frozen=True)
class Cond:
    """One query condition; conditions of a query are ANDed.

    ``eq``: exact equality (ids in canonical lower case, numbers, dates, text);
    ``ieq``: ASCII-case-insensitive equality (``value`` already folded);
    ``icontains``: ASCII-case-insensitive literal substring (``value`` already folded);
    ``ge``/``le``: inclusive range on numbers and dates.
    A NULL field never matches.
    """

    field: str
    op: Op
    value: Any


class Store(Protocol):
    """Record storage with conjunctive queries and savepoints."""

    backend: str

    def get(self, table: str, key: str) -> Record | None:
        """The record with that canonical id, or None."""

    def find(self, table: str, where: Sequence[Cond] = ()) -> list[Record]:
        """Matching records in creation order."""

    def insert(self, table: str, record: Record) -> None:
        """Add a record (all fields present)."""

    def insert_many(self, records: Mapping[str, Sequence[Record]]) -> None:
        """Add records to several tables (all fields present), tables in load order.

        One call for a batch (seeds): the PostgreSQL store sends it as one statement.
        """

    def update(self, table: str, key: str, changes: Record) -> None:
        """Change some fields of an existing record."""

    def delete(self, table: str, key: str) -> None:
        """Remove an existing record."""

    def savepoint(self) -> str:
        """Open a nested atomic unit; returns its name."""

    def rollback_to(self, name: str) -> None:
        """Undo everything since the savepoint and close it."""

    def release(self, name: str) -> None:
        """Keep what happened since the savepoint and close it."""

    def mark_base(self) -> None:
        """Make the current content the state that :meth:`reset` returns to."""

    def reset(self) -> None:
        """Discard every change since :meth:`mark_base` (per-item isolation)."""

    def dump(self) -> dict[str, list[Record]]:
        """Every table's records in creation order (verification, differential tests)."""

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""


@contextmanager
def atomic(store: Store) -> Iterator[None]:
    """All or nothing: a failure inside rolls the store back to where it was."""
    name = store.savepoint()
    try:
        yield
    except BaseException:
        store.rollback_to(name)
        raise
    store.release(name)
