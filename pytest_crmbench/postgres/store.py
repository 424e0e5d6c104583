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
        self._exec("COMMIT")
        self._exec("BEGIN")

    def reset(self) -> None:
        self._exec("ROLLBACK")
        self._exec("BEGIN")

    # -- reads ---------------------------------------------------------------------
    def get(self, table: str, key: str) -> Record | None:
        t = self._tables[table]
        self._exec(t.get, (uuid.UUID(key),))
        row = self._cur.fetchone()
        return t.from_db(row) if row is not None else None

    def find(self, table: str, where: Sequence[Cond] = ()) -> list[Record]:
        from psycopg import sql

        t = self._tables[table]
        clauses: list[sql.Composable] = []
        params: list[Any] = []
        for cond in where:
            if cond.field not in t.kinds:
                raise KeyError(f"{table} has no field {cond.field}")
            col = sql.Identifier(cond.field)
            if cond.op == "eq":
                clauses.append(sql.SQL("{} = %s").format(col))
                params.append(t.to_db(cond.field, cond.value))
            elif cond.op == "ieq":
                clauses.append(sql.SQL('lower({} COLLATE "C") = %s').format(col))
                params.append(cond.value)
            elif cond.op == "icontains":
                clauses.append(sql.SQL('strpos(lower({} COLLATE "C"), %s) > 0').format(col))
                params.append(cond.value)
            else:
                op = sql.SQL(">=" if cond.op == "ge" else "<=")
                clauses.append(sql.SQL("{} {} %s").format(col, op))
                params.append(cond.value)
        query = t.select
        if clauses:
            query = sql.SQL("{} WHERE {}").format(query, sql.SQL(" AND ").join(clauses))
        self._exec(sql.SQL("{} ORDER BY seq").format(query), params)
        return [t.from_db(row) for row in self._cur.fetchall()]

    # -- writes --------------------------------------------------------------------
    def insert(self, table: str, record: Record) -> None:
        t = self._tables[table]
        self._exec(t.insert, [t.to_db(n, record.get(n)) for n in t.names])

    def update(self, table: str, key: str, changes: Record) -> None:
        from psycopg import sql

        t = self._tables[table]
        names = [n for n in changes if n in t.kinds]
        if not names:
            return
        sets = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(n)) for n in names)
        query = sql.SQL("UPDATE {} SET {} WHERE {} = %s").format(t.table, sets, t.key)
        self._exec(query, [*(t.to_db(n, changes[n]) for n in names), uuid.UUID(key)])

    def delete(self, table: str, key: str) -> None:
        self._exec(self._tables[table].delete, (uuid.UUID(key),))

    # -- atomic units --------------------------------------------------------------
    def savepoint(self) -> str:
        self._counter += 1
        name = f"sp{self._counter}"
        self._exec(f"SAVEPOINT {name}")
        return name

    def rollback_to(self, name: str) -> None:
        self._exec(f"ROLLBACK TO SAVEPOINT {name}")
        self._exec(f"RELEASE SAVEPOINT {name}")

    def release(self, name: str) -> None:
        self._exec(f"RELEASE SAVEPOINT {name}")

    def dump(self) -> dict[str, list[Record]]:
        return {t: self.find(t) for t in LOAD_ORDER}


__all__ = ["PostgresStore", "schema_sql"]
_ = (date, datetime)
