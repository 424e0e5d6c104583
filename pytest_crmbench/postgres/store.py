"""The PostgreSQL store (psycopg 3): the same interface as the memory store, on real SQL.

One connection, one open transaction per item (rolled back by :meth:`reset`), one
savepoint per tool call. SQL is parameterised; identifiers come only from the entity
metadata, never from input.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from pytest_crmbench.crm.entities import BY_TABLE, LOAD_ORDER, Entity, Record
from pytest_crmbench.crm.errors import CrmError
from pytest_crmbench.crm.store import Cond

if TYPE_CHECKING:
    import psycopg

_ID_KINDS = frozenset({"id", "ref", "entity_ref"})


def schema_sql() -> str:
    """The DDL that creates the CRM's tables (drops existing ones first)."""
    return resources.files("pytest_crmbench.postgres").joinpath("schema.sql").read_text("utf-8")


class _Table:
    """Prebuilt statements and value conversions for one entity's table."""

    def __init__(self, entity: Entity) -> None:
        from psycopg import sql

        self.entity = entity
        self.kinds = {f.name: f.kind for f in entity.fields}
        names = entity.field_names
        table = sql.Identifier(entity.table)
        cols = sql.SQL(", ").join(sql.Identifier(n) for n in names)
        key = sql.Identifier(entity.key)
        self.select = sql.SQL("SELECT {} FROM {}").format(cols, table)
        self.get = sql.SQL("SELECT {} FROM {} WHERE {} = %s").format(cols, table, key)
        self.insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            table, cols, sql.SQL(", ").join(sql.Placeholder() * len(names))
        )
        self.delete = sql.SQL("DELETE FROM {} WHERE {} = %s").format(table, key)
        self.table = table
        self.key = key
        self.names = names

    def to_db(self, name: str, value: Any) -> Any:
        kind = self.kinds[name]
        if value is None:
            return None
        if kind in _ID_KINDS:
            return uuid.UUID(value)
        if kind == "id_list":
            return [uuid.UUID(x) for x in value]
        return value

    def from_db(self, row: Sequence[Any]) -> Record:
        record: Record = {}
        for name, value in zip(self.names, row, strict=True):
            kind = self.kinds[name]
            if value is not None:
                if kind in _ID_KINDS:
                    value = str(value)
                elif kind == "id_list":
                    value = [str(x) for x in value]
            record[name] = value
        return record


class PostgresStore:
    """A CRM store in one PostgreSQL database.

    ``conninfo`` names a database this store may own: :meth:`install_schema` drops and
    recreates the CRM tables there. Typical life: install_schema → load the seed →
    :meth:`mark_base` (commits) → per item: calls … :meth:`reset`.
    """

    backend = "postgres"

    def __init__(self, conninfo: str, *, connect_timeout: float = 10.0) -> None:
        import psycopg

        self._psycopg = psycopg
        try:
            self._conn: psycopg.Connection[Any] = psycopg.connect(
                conninfo,
                autocommit=True,
                connect_timeout=max(1, int(connect_timeout)),
                options="-c timezone=UTC -c statement_timeout=30000 -c lock_timeout=10000",
            )
        except psycopg.OperationalError as exc:
            raise ConnectionError(f"cannot connect to PostgreSQL: {exc}".strip()) from exc
        self._cur = self._conn.cursor()
        self._tables = {t: _Table(BY_TABLE[t]) for t in LOAD_ORDER}
        self._counter = 0
        # Savepoints are issued lazily, just before the first write inside them: most tool
        # calls only read (or fail validation) and then cost no round trip at all.
        self._pending: list[str] = []
        self._queries: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        self._issued: list[str] = []
        self._exec("BEGIN")

    # -- plumbing ------------------------------------------------------------------
    def _exec(self, query: Any, params: Sequence[Any] | None = None) -> None:
        try:
            self._cur.execute(query, params)
        except (self._psycopg.errors.IntegrityError, self._psycopg.errors.DataError) as exc:
            # Defence in depth fired: the Python rules let something through.
            diag = exc.diag
            raise CrmError(
                f"The database refused the change ({diag.constraint_name or diag.sqlstate})."
            ) from exc

    def close(self) -> None:
        if not self._conn.closed:
            self._conn.close()

    def install_schema(self) -> None:
        """Drop and recreate the CRM tables (inside the current transaction)."""
        self._exec(schema_sql())

    def mark_base(self) -> None:
        """Commit: the current content becomes what :meth:`reset` returns to."""
        self._pending.clear()
        self._issued.clear()
        self._exec("COMMIT; BEGIN")  # one round trip

    def reset(self) -> None:
        self._pending.clear()
        self._issued.clear()
        self._exec("ROLLBACK; BEGIN")  # one round trip: the per-item isolation cost

    # -- reads ---------------------------------------------------------------------
    def get(self, table: str, key: str) -> Record | None:
        t = self._tables[table]
        self._exec(t.get, (uuid.UUID(key),))
        row = self._cur.fetchone()
        return t.from_db(row) if row is not None else None

    def _find_query(self, table: str, shape: tuple[tuple[str, str], ...]) -> str:
        """The SQL text of a query shape (fields and operators), composed once and cached."""
        query = self._queries.get((table, shape))
        if query is not None:
            return query
        from psycopg import sql

        t = self._tables[table]
        templates = {
            "eq": "{} = %s",
            "ieq": 'lower({} COLLATE "C") = %s',
            "icontains": 'strpos(lower({} COLLATE "C"), %s) > 0',
            "ge": "{} >= %s",
            "le": "{} <= %s",
        }
        clauses: list[sql.Composable] = []
        for field, op in shape:
            if field not in t.kinds:
                raise KeyError(f"{table} has no field {field}")
            clauses.append(sql.SQL(templates[op]).format(sql.Identifier(field)))
        composed = t.select
        if clauses:
            composed = sql.SQL("{} WHERE {}").format(composed, sql.SQL(" AND ").join(clauses))
        query = sql.SQL("{} ORDER BY seq").format(composed).as_string(self._conn)
        self._queries[(table, shape)] = query
        return query

    def find(self, table: str, where: Sequence[Cond] = ()) -> list[Record]:
        t = self._tables[table]
        query = self._find_query(table, tuple((c.field, c.op) for c in where))
        params = [t.to_db(c.field, c.value) if c.op == "eq" else c.value for c in where]
        self._exec(query, params)
        return [t.from_db(row) for row in self._cur.fetchall()]

    # -- writes --------------------------------------------------------------------
    def _before_write(self) -> None:
        for name in self._pending:
            self._exec(f"SAVEPOINT {name}")
            self._issued.append(name)
        self._pending.clear()

    def insert(self, table: str, record: Record) -> None:
        self._before_write()
        t = self._tables[table]
        self._exec(t.insert, [t.to_db(n, record.get(n)) for n in t.names])

    def update(self, table: str, key: str, changes: Record) -> None:
        from psycopg import sql

        t = self._tables[table]
        names = [n for n in changes if n in t.kinds]
        if not names:
            return
        self._before_write()
        sets = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(n)) for n in names)
        query = sql.SQL("UPDATE {} SET {} WHERE {} = %s").format(t.table, sets, t.key)
        self._exec(query, [*(t.to_db(n, changes[n]) for n in names), uuid.UUID(key)])

    def delete(self, table: str, key: str) -> None:
        self._before_write()
        self._exec(self._tables[table].delete, (uuid.UUID(key),))

    # -- atomic units --------------------------------------------------------------
    def savepoint(self) -> str:
        self._counter += 1
        name = f"sp{self._counter}"
        self._pending.append(name)
        return name

    def _close(self, name: str) -> bool:
        """Forget ``name`` and the savepoints opened after it; True if it was issued."""
        if name in self._pending:
            del self._pending[self._pending.index(name) :]
            return False
        self._pending.clear()  # any still pending were opened inside ``name``
        if name not in self._issued:
            raise KeyError(f"no savepoint {name}")
        del self._issued[self._issued.index(name) :]
        return True

    def rollback_to(self, name: str) -> None:
        if self._close(name):
            # Rolled back and left in place: names are unique, the transaction ends it.
            self._exec(f"ROLLBACK TO SAVEPOINT {name}")

    def release(self, name: str) -> None:
        if self._close(name):
            self._exec(f"RELEASE SAVEPOINT {name}")

    def dump(self) -> dict[str, list[Record]]:
        return {t: self.find(t) for t in LOAD_ORDER}


__all__ = ["PostgresStore", "schema_sql"]
_ = (date, datetime)
