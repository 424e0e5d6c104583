"""The PostgreSQL store (psycopg 3): the same interface as the memory store, on real SQL.

One connection, one open transaction per item (rolled back by :meth:`reset`), one
atomic unit per tool call (see :class:`PostgresStore` for how it stays cheap). SQL is
parameterised; identifiers come only from the entity metadata, never from input.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from pytest_crmbench.crm.entities import BY_TABLE, LOAD_ORDER, Entity, Record
from pytest_crmbench.crm.errors import CrmError
from pytest_crmbench.crm.store import Cond

if TYPE_CHECKING:
    import psycopg

_ID_KINDS = frozenset({"id", "ref", "entity_ref"})
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")  # used unquoted: lower case only


def schema_sql() -> str:
    """The DDL that creates the CRM's tables (drops existing ones first)."""
    return resources.files("pytest_crmbench.postgres").joinpath("schema.sql").read_text("utf-8")


class _Table:
    """Statements (rendered to text once) and value conversions for one entity's table."""

    def __init__(self, entity: Entity, conn: psycopg.Connection[Any]) -> None:
        from psycopg import sql  # lazy: psycopg, only if the PostgreSQL store is used

        self.entity = entity
        self.kinds = {f.name: f.kind for f in entity.fields}
        names = entity.field_names
        self.names = names
        self.key_index = names.index(entity.key)
        self._conn = conn
        self.table = sql.Identifier(entity.table)
        self.key = sql.Identifier(entity.key)
        self.cols = sql.SQL(", ").join(sql.Identifier(n) for n in names)
        self.row = sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() * len(names)))
        self.select = self._text("SELECT {} FROM {}", self.cols, self.table)
        self.get = self._text("SELECT {} FROM {} WHERE {} = %s", self.cols, self.table, self.key)
        self.insert = self._text(
            "INSERT INTO {} ({}) VALUES {} RETURNING {}", self.table, self.cols, self.row, self.cols
        )
        self.delete = self._text("DELETE FROM {} WHERE {} = %s", self.table, self.key)
        self.insert_head = self._text("INSERT INTO {} ({}) VALUES ", self.table, self.cols)
        self.row_text = self._text("{}", self.row)
        self._updates: dict[tuple[str, ...], str] = {}

    def _text(self, template: str, *parts: Any) -> str:
        from psycopg import sql  # lazy: psycopg, only if the PostgreSQL store is used

        return sql.SQL(template).format(*parts).as_string(self._conn)

    def update(self, names: tuple[str, ...]) -> str:
        """The UPDATE … RETURNING text for one set of changed fields (rendered once)."""
        query = self._updates.get(names)
        if query is None:
            from psycopg import sql  # lazy: psycopg, only if the PostgreSQL store is used

            sets = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(n)) for n in names)
            query = self._text(
                "UPDATE {} SET {} WHERE {} = %s RETURNING {}", self.table, sets, self.key, self.cols
            )
            self._updates[names] = query
        return query

    def values(self, record: Record) -> list[Any]:
        return [self.to_db(n, record.get(n)) for n in self.names]

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


Row = tuple[Any, ...]
Statement = tuple[str, Sequence[Any] | None]


class PostgresStore:
    """A CRM store in one PostgreSQL database (or one schema of it).

    ``conninfo`` names a database this store may own: :meth:`install_schema` drops and
    recreates the CRM tables there — in ``schema`` when given, so that several stores
    (the conversation slots of a process) share one database without sharing a table, an
    index or a row: none can block on another's uncommitted unique value or see it.
    Typical life: install_schema → load the seed → :meth:`mark_base` (commits) → per
    item: calls … :meth:`reset`.

    Speed comes from saying less, not from saying it faster (on a local server a round
    trip is mostly the two processes' CPU): every write is one statement, with no
    SAVEPOINT or RELEASE around it; a store's records read or written in this
    transaction are remembered (this connection is the only writer of its database), so
    re-reading them costs nothing; a batch of inserts is one statement.

    Savepoints are bookkeeping: the store journals the writes of the open transaction.
    Rolling back to a savepoint that saw writes (rare: the CRM validates before writing,
    so only a refused change or a crash mid-call gets there) rolls the transaction back
    and replays the journal up to the savepoint — the same net state, in one round trip.
    """

    backend = "postgres"

    def __init__(
        self, conninfo: str, *, connect_timeout: float = 10.0, schema: str | None = None
    ) -> None:
        import psycopg  # lazy: psycopg, only if the PostgreSQL store is used

        self._psycopg = psycopg
        options = "-c timezone=UTC -c statement_timeout=30000 -c lock_timeout=10000"
        if schema is not None:
            if not _SCHEMA_NAME.fullmatch(schema):
                raise ValueError(f"not a schema name for a store: {schema!r}")
            options += f" -c search_path={schema}"  # every unqualified name: this schema
        self._schema = schema
        try:
            self._conn: psycopg.Connection[Any] = psycopg.connect(
                conninfo,
                autocommit=True,
                connect_timeout=max(1, int(connect_timeout)),
                options=options,
            )
        except psycopg.OperationalError as exc:
            raise ConnectionError(f"cannot connect to PostgreSQL: {exc}".strip()) from exc
        self._cur = self._conn.cursor()
        self._tables = {t: _Table(BY_TABLE[t], self._conn) for t in LOAD_ORDER}
        self._counter = 0
        self._queries: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        self._batches: dict[tuple[tuple[str, int], ...], str] = {}  # insert_many texts
        self._journal: list[Statement] = []  # the writes of the open transaction, in order
        self._savepoints: list[tuple[str, int]] = []  # (name, journal length when opened)
        self._aborted = False  # a statement failed: the transaction needs a rollback
        self._ddl = False  # this transaction ran DDL (see _restart)
        # Rows of this transaction by (table, canonical id); None: known not to exist.
        self._rows: dict[tuple[str, str], Row | None] = {}
        self._exec("BEGIN")

    # -- plumbing ------------------------------------------------------------------
    def _exec(
        self, query: Any, params: Sequence[Any] | None = None, *, prepare: bool | None = None
    ) -> None:
        try:
            self._cur.execute(query, params, prepare=prepare)
        except (self._psycopg.errors.IntegrityError, self._psycopg.errors.DataError) as exc:
            self._aborted = True
            # Defence in depth fired: the Python rules let something through.
            diag = exc.diag
            raise CrmError(
                f"The database refused the change ({diag.constraint_name or diag.sqlstate})."
            ) from exc
        except self._psycopg.Error:
            self._aborted = True
            raise

    def _write(
        self, query: str, params: Sequence[Any] | None, *, prepare: bool | None = None
    ) -> None:
        self._exec(query, params, prepare=prepare)
        self._journal.append((query, params))

    def _restart(self, end: str) -> None:
        """End the transaction (COMMIT or ROLLBACK) and begin the next, in one round trip.

        A ROLLBACK seen through a cursor makes psycopg forget every prepared statement
        (and send DEALLOCATE ALL): it cannot know whether the transaction created the
        objects they use. Here only :meth:`install_schema` runs DDL, so a rollback of a
        DDL-free transaction goes straight to libpq, past that bookkeeping, and the hot
        statements stay prepared from one item to the next.
        """
        if end == "ROLLBACK" and not self._ddl:
            self._exec_libpq(b"ROLLBACK; BEGIN")
        else:
            self._exec(f"{end}; BEGIN")
        self._ddl = False
        self._aborted = False

    def _exec_libpq(self, command: bytes) -> None:
        """Run ``command`` (no parameters, no rows) on libpq directly: one round trip."""
        result = self._conn.pgconn.exec_(command)
        if result.status != self._psycopg.pq.ExecStatus.COMMAND_OK:
            self._aborted = True
            message = (result.error_message or b"").decode("utf-8", "replace").strip()
            raise self._psycopg.OperationalError(f"PostgreSQL refused {command!r}: {message}")

    def _new_transaction(self, end: str) -> None:
        self._savepoints.clear()
        self._journal.clear()
        self._rows.clear()
        self._restart(end)

    def close(self) -> None:
        if not self._conn.closed:
            self._conn.close()

    def install_schema(self) -> None:
        """Drop and recreate the CRM tables (inside the current transaction)."""
        self._rows.clear()
        self._ddl = True
        create = f"CREATE SCHEMA IF NOT EXISTS {self._schema};\n" if self._schema else ""
        self._write(create + schema_sql(), None)

    def mark_base(self) -> None:
        """Commit: the current content becomes what :meth:`reset` returns to."""
        self._new_transaction("COMMIT")

    def reset(self) -> None:
        self._new_transaction("ROLLBACK")  # the per-item isolation cost

    # -- reads ---------------------------------------------------------------------
    def _remember(self, table: str, t: _Table, row: Row) -> None:
        self._rows[(table, str(row[t.key_index]))] = row

    def get(self, table: str, key: str) -> Record | None:
        t = self._tables[table]
        try:
            row = self._rows[(table, key)]
        except KeyError:
            self._exec(t.get, (uuid.UUID(key),))
            row = self._cur.fetchone()
            if row is None:
                self._rows[(table, str(uuid.UUID(key)))] = None
            else:
                self._remember(table, t, row)
        return t.from_db(row) if row is not None else None

    def _find_query(self, table: str, shape: tuple[tuple[str, str], ...]) -> str:
        """The SQL text of a query shape (fields and operators), composed once and cached."""
        query = self._queries.get((table, shape))
        if query is not None:
            return query
        from psycopg import sql  # lazy: psycopg, only if the PostgreSQL store is used

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
        composed: sql.Composable = sql.SQL(t.select)
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
        rows = self._cur.fetchall()
        for row in rows:
            self._remember(table, t, row)
        return [t.from_db(row) for row in rows]

    # -- writes --------------------------------------------------------------------
    def insert(self, table: str, record: Record) -> None:
        t = self._tables[table]
        self._write(t.insert, t.values(record))
        row = self._cur.fetchone()
        assert row is not None
        self._remember(table, t, row)

    def insert_many(self, records: Mapping[str, Sequence[Record]]) -> None:
        """One statement for every table: a data-modifying CTE per table, in load order.

        Foreign keys are checked at the end of the statement, so rows may point at rows
        of an earlier table in the same batch. Rows are not remembered (no RETURNING):
        most batches are seeds that are only partly read afterwards.
        """
        shape: list[tuple[str, int]] = []
        params: list[Any] = []
        for table in LOAD_ORDER:
            batch = records.get(table, ())
            if batch:
                shape.append((table, len(batch)))
                t = self._tables[table]
                for record in batch:
                    params += t.values(record)
        if not shape:
            return
        # Batches rarely repeat their shape: preparing them would only evict the hot
        # statements from psycopg's cache of prepared statements.
        self._write(self._batch_query(tuple(shape)), params, prepare=False)

    def _batch_query(self, shape: tuple[tuple[str, int], ...]) -> str:
        """The text of one batch shape, joined from each table's pre-rendered pieces.

        Plain string joins: composing it with psycopg.sql for every batch cost more than
        the database's work on it.
        """
        query = self._batches.get(shape)
        if query is None:
            parts = [
                self._tables[table].insert_head + ", ".join([self._tables[table].row_text] * n)
                for table, n in shape
            ]
            *ctes, query = parts
            if ctes:
                query = (
                    "WITH "
                    + ", ".join(f"w{i} AS ({part})" for i, part in enumerate(ctes))
                    + " "
                    + query
                )
            if len(self._batches) >= 512:
                self._batches.clear()
            self._batches[shape] = query
        return query

    def update(self, table: str, key: str, changes: Record) -> None:
        t = self._tables[table]
        names = tuple(n for n in changes if n in t.kinds)
        if not names:
            return
        self._write(t.update(names), [*(t.to_db(n, changes[n]) for n in names), uuid.UUID(key)])
        row = self._cur.fetchone()
        self._rows[(table, str(uuid.UUID(key)))] = None  # gone, or moved to a new key
        if row is not None:
            self._remember(table, t, row)

    def delete(self, table: str, key: str) -> None:
        self._write(self._tables[table].delete, (uuid.UUID(key),))
        self._rows[(table, str(uuid.UUID(key)))] = None

    # -- atomic units --------------------------------------------------------------
    def savepoint(self) -> str:
        self._counter += 1
        name = f"sp{self._counter}"
        self._savepoints.append((name, len(self._journal)))
        return name

    def _pop(self, name: str) -> int:
        """Close ``name`` and the savepoints opened after it; the journal length at ``name``."""
        while self._savepoints:
            current, mark = self._savepoints.pop()
            if current == name:
                return mark
        raise KeyError(f"no savepoint {name}")

    def rollback_to(self, name: str) -> None:
        mark = self._pop(name)
        if len(self._journal) == mark and not self._aborted:
            return  # nothing was written since: nothing to undo
        keep = self._journal[:mark]
        self._journal = []
        self._rows.clear()
        self._restart("ROLLBACK")
        if keep:
            try:
                with self._conn.pipeline():  # the whole replay in one round trip
                    for query, params in keep:
                        self._cur.execute(query, params)
            except self._psycopg.Error:
                self._aborted = True
                raise
            self._journal = keep

    def release(self, name: str) -> None:
        self._pop(name)

    def dump(self) -> dict[str, list[Record]]:
        return {t: self.find(t) for t in LOAD_ORDER}


__all__ = ["PostgresStore", "schema_sql"]
_ = (date, datetime)
