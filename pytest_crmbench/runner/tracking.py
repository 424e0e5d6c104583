"""A store wrapper that journals which records a turn touched.

The verdict compares the change an agent made with the change the reference made. A
journal of touched keys, with the before-image taken at first touch, gives that change
in O(writes) instead of dumping whole databases every turn. Savepoints are honoured:
a tool call that fails and rolls back leaves no trace in the journal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pytest_crmbench.crm.entities import BY_TABLE, LOAD_ORDER, Record
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
        # Images known without asking the store: records just read (before-images of the
        # writes that follow) and the result of every write seen. A rollback forgets them.
        self._known: dict[Key, Record | None] = {}

    # -- journal ---------------------------------------------------------------------
    def start(self) -> None:
        """Begin a new observation window (a turn)."""
        self._before = {}

    def _image(self, k: Key) -> Record | None:
        if k in self._known:
            known = self._known[k]
            return dict(known) if known is not None else None
        return self.inner.get(*k)

    def changes(self) -> list[Change]:
        """Net changes since :meth:`start`, in first-touch order; no-op writes dropped."""
        out: list[Change] = []
        for k, before in self._before.items():
            after = self._image(k)
            if before != after:
                out.append(Change(k[0], k[1], before, after))
        return out

    def _touch(self, table: str, key: str, *, new: bool = False) -> Record | None:
        """Record the before-image at first touch; returns the current image."""
        k = (table, key)
        current = None if new else self._image(k)
        if k not in self._before:
            self._before[k] = current
            if self._frames:
                self._frames[-1].firsts.append(k)
        return current

    # -- Store interface -------------------------------------------------------------
    def get(self, table: str, key: str) -> Record | None:
        record = self.inner.get(table, key)
        self._known[(table, key)] = dict(record) if record is not None else None
        return record

    def find(self, table: str, where: Sequence[Cond] = ()) -> list[Record]:
        return self.inner.find(table, where)

    def insert(self, table: str, record: Record) -> None:

        key = record[BY_TABLE[table].key]
        self._touch(table, key, new=True)
        self.inner.insert(table, record)
        self._known[(table, key)] = dict(record)

    def insert_many(self, records: Mapping[str, Sequence[Record]]) -> None:
        for table in LOAD_ORDER:
            for record in records.get(table, ()):
                self._touch(table, record[BY_TABLE[table].key], new=True)
        self.inner.insert_many(records)
        for table in LOAD_ORDER:
            for record in records.get(table, ()):
                self._known[(table, record[BY_TABLE[table].key])] = dict(record)

    def update(self, table: str, key: str, changes: Record) -> None:
        current = self._touch(table, key)
        self.inner.update(table, key, changes)
        if current is None:
            self._known.pop((table, key), None)
        else:
            self._known[(table, key)] = {**current, **changes}

    def delete(self, table: str, key: str) -> None:
        self._touch(table, key)
        self.inner.delete(table, key)
        self._known[(table, key)] = None

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
        self._known.clear()
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
        self._known.clear()
        self.inner.reset()

    def dump(self) -> dict[str, list[Record]]:
        return self.inner.dump()

    def close(self) -> None:
        self.inner.close()
