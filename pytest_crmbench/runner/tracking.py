"""A store wrapper that journals which records a turn touched.

The verdict compares the change an agent made with the change the reference made. A
journal of touched keys, with the before-image taken at first touch, gives that change
in O(writes) instead of dumping whole databases every turn. Savepoints are honoured:
a tool call that fails and rolls back leaves no trace in the journal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pytest_crmbench.crm.entities import Record
from pytest_crmbench.crm.store import Cond, Store

Key = tuple[str, str]  # (table, record id)


@dataclass
class Change:
    """A record's net change over a window (``before`` None: created; ``after`` None: deleted)."""

    table: str
    key: str
    before: Record | None
    after: Record | None

    @property
    def kind(self) -> str:
        if self.before is None:
            return "created"
        return "deleted" if self.after is None else "modified"


@dataclass
class _Frame:
    name: str
    firsts: list[Key] = field(default_factory=list)  # keys first touched inside this savepoint


class TrackingStore:
    """Delegates to ``inner``, remembering before-images of keys touched since :meth:`start`."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.backend = inner.backend
        self._before: dict[Key, Record | None] = {}
        self._frames: list[_Frame] = []

    # -- journal ---------------------------------------------------------------------
    def start(self) -> None:
        """Begin a new observation window (a turn)."""
        self._before = {}

    def changes(self) -> list[Change]:
        """Net changes since :meth:`start`, in first-touch order; no-op writes dropped."""
        out: list[Change] = []
        for (table, key), before in self._before.items():
            after = self.inner.get(table, key)
            if before != after:
                out.append(Change(table, key, before, after))
        return out

    def _touch(self, table: str, key: str, *, new: bool = False) -> None:
        k = (table, key)
        if k in self._before:
            return
        self._before[k] = None if new else self.inner.get(table, key)
        if self._frames:
            self._frames[-1].firsts.append(k)

    # -- Store interface -------------------------------------------------------------
    def get(self, table: str, key: str) -> Record | None:
        return self.inner.get(table, key)

    def find(self, table: str, where: Sequence[Cond] = ()) -> list[Record]:
        return self.inner.find(table, where)

    def insert(self, table: str, record: Record) -> None:
        from pytest_crmbench.crm.entities import BY_TABLE

        self._touch(table, record[BY_TABLE[table].key], new=True)
        self.inner.insert(table, record)

    def update(self, table: str, key: str, changes: Record) -> None:
        self._touch(table, key)
        self.inner.update(table, key, changes)

    def delete(self, table: str, key: str) -> None:
        self._touch(table, key)
        self.inner.delete(table, key)

    def savepoint(self) -> str:
        name = self.inner.savepoint()
        self._frames.append(_Frame(name))
        return name

    def _pop(self, name: str) -> _Frame:
        while self._frames:
            frame = self._frames.pop()
            if frame.name == name:
                return frame
        raise KeyError(name)

    def rollback_to(self, name: str) -> None:
        self.inner.rollback_to(name)
        for k in self._pop(name).firsts:
            self._before.pop(k, None)

    def release(self, name: str) -> None:
        self.inner.release(name)
        firsts = self._pop(name).firsts
        if self._frames:
            self._frames[-1].firsts.extend(firsts)

    def mark_base(self) -> None:
        self.inner.mark_base()

    def reset(self) -> None:
        self._frames.clear()
        self._before = {}
        self.inner.reset()

    def dump(self) -> dict[str, list[Record]]:
        return self.inner.dump()

    def close(self) -> None:
        self.inner.close()
