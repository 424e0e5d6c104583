"""The in-memory store: plain dicts plus an undo log for savepoints and item resets."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping, Sequence

from pytest_crmbench.crm.entities import BY_TABLE, LOAD_ORDER, Record
from pytest_crmbench.crm.store import Cond
from pytest_crmbench.crm.validation import fold

# An undo entry: a function that reverts one primitive change.
_Undo = Callable[[], None]


_folded = functools.lru_cache(maxsize=65536)(fold)


def _predicate(cond: Cond) -> Callable[[Record], bool]:
    """One condition as a function of a record (built once per query, not per record)."""
    name, want = cond.field, cond.value
    if cond.op == "eq":
        return lambda r: r[name] is not None and bool(r[name] == want)
    if cond.op == "ieq":
        return lambda r: r[name] is not None and _folded(r[name]) == want
    if cond.op == "icontains":
        return lambda r: r[name] is not None and want in _folded(r[name])
    if cond.op == "ge":
        return lambda r: r[name] is not None and bool(r[name] >= want)
    return lambda r: r[name] is not None and bool(r[name] <= want)


def _copy(record: Record) -> Record:
    """Records hold immutable values except id lists; a shallow copy plus list copies."""
    return {k: list(v) if isinstance(v, list) else v for k, v in record.items()}


class MemoryStore:
    """Fast, dependency-free store; behaves exactly like the PostgreSQL store.

    Creation order is kept by a sequence number per record, so a deleted record that a
    rollback restores comes back at its original place, as it does in PostgreSQL.
    """

    backend = "memory"

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, Record]] = {t: {} for t in LOAD_ORDER}
        self._seq: dict[str, dict[str, int]] = {t: {} for t in LOAD_ORDER}
        self._next_seq = 0
        self._undo: list[_Undo] = []
        self._savepoints: list[tuple[str, int]] = []
        self._counter = 0
        self._base = 0  # undo-log length at the end of seeding; reset() returns here

    # -- reads ---------------------------------------------------------------------
    def get(self, table: str, key: str) -> Record | None:
        record = self._tables[table].get(key)
        return _copy(record) if record is not None else None

    def find(self, table: str, where: Sequence[Cond] = ()) -> list[Record]:
        rows = list(self._tables[table].values())
        for cond in where:
            test = _predicate(cond)
            rows = [r for r in rows if test(r)]
        seq = self._seq[table]
        key = BY_TABLE[table].key
        rows.sort(key=lambda r: seq[r[key]])
        return [_copy(r) for r in rows]

    # -- writes --------------------------------------------------------------------
    def insert(self, table: str, record: Record) -> None:
        key = record[BY_TABLE[table].key]
        if key in self._tables[table]:
            raise KeyError(f"duplicate key {key} in {table}")
        self._tables[table][key] = _copy(record)
        self._next_seq += 1
        self._seq[table][key] = self._next_seq

        def undo() -> None:
            del self._tables[table][key]
            del self._seq[table][key]

        self._undo.append(undo)

    def insert_many(self, records: Mapping[str, Sequence[Record]]) -> None:
        for table in LOAD_ORDER:
            for record in records.get(table, ()):
                self.insert(table, record)

    def update(self, table: str, key: str, changes: Record) -> None:
        record = self._tables[table][key]
        before = {f: record[f] for f in changes}
        record.update(_copy(changes))
        self._undo.append(lambda: record.update(before))

    def delete(self, table: str, key: str) -> None:
        record = self._tables[table].pop(key)
        seq = self._seq[table].pop(key)

        def undo() -> None:
            self._tables[table][key] = record
            self._seq[table][key] = seq

        self._undo.append(undo)

    # -- atomic units --------------------------------------------------------------
    def savepoint(self) -> str:
        self._counter += 1
        name = f"sp{self._counter}"
        self._savepoints.append((name, len(self._undo)))
        return name

    def _pop_savepoint(self, name: str) -> int:
        while self._savepoints:
            current, mark = self._savepoints.pop()
            if current == name:
                return mark
        raise KeyError(f"no savepoint {name}")

    def _undo_to(self, mark: int) -> None:
        while len(self._undo) > mark:
            self._undo.pop()()

    def rollback_to(self, name: str) -> None:
        self._undo_to(self._pop_savepoint(name))

    def release(self, name: str) -> None:
        self._pop_savepoint(name)

    def mark_base(self) -> None:
        """Declare the current content the state that :meth:`reset` returns to."""
        self._undo.clear()
        self._savepoints.clear()
        self._base = 0

    def reset(self) -> None:
        self._savepoints.clear()
        self._undo_to(self._base)

    def close(self) -> None:
        """Nothing to release; present for the store interface."""

    # -- whole-store helpers (tests, reference copies) -----------------------------
    def dump(self) -> dict[str, list[Record]]:
        return {t: self.find(t) for t in LOAD_ORDER}

    def clone(self) -> MemoryStore:
        """An independent copy whose base is this store's current content."""
        other = MemoryStore()
        other._tables = copy.deepcopy(self._tables)
        other._seq = copy.deepcopy(self._seq)
        other._next_seq = self._next_seq
        return other
