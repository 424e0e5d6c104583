"""The PostgreSQL store (psycopg 3): the same interface as the memory store, on real SQL.

One connection, one open transaction per item (rolled back by :meth:`reset`), one
atomic unit per tool call (see :class:`PostgresStore` for how it stays cheap). SQL is
parameterised; identifiers come only from the entity metadata, never from input.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from pytest_crmbench.crm.entities import BY_TABLE, LOAD_ORDER, Entity, Record
from pytest_crmbench.crm.errors import CrmError
from pytest_crmbench.crm.store import Cond

if TYPE_CHECKING:
    import psycopg
    from psycopg.pq.abc import PGresult

_ID_KINDS = frozenset({"id", "ref", "entity_ref"})
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")  # used unquoted: lower case only
_COMMAND_OK, _TUPLES_OK, _FATAL_ERROR, _PIPELINE_SYNC = 1, 2, 7, 10  # libpq ExecStatus
VACUUM_EVERY = 250  # items between two vacuums of the tables (see PostgresStore._vacuum)
MAX_PREPARED = 500  # statements prepared in the session before they are all deallocated


def schema_sql() -> str:
    """The DDL that creates the CRM's tables (drops existing ones first)."""
    return resources.files("pytest_crmbench.postgres").joinpath("schema.sql").read_text("utf-8")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


Param = bytes | None
Row = tuple[Any, ...]
Call = tuple[str, Sequence[Param]]  # a statement's text (``$n`` placeholders), its parameters


def _text(value: Any) -> str:
    """A value's text form as PostgreSQL's input functions read it."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is float:
        return repr(value)  # shortest exact form; float8 also reads inf, -inf and nan
    if kind is int:
        return str(value)
    if kind is datetime or kind is date:
        return value.isoformat()  # type: ignore[no-any-return]
    if kind is list:
        return "{" + ",".join(_element(x) for x in value) + "}"
    if isinstance(value, str):
        return str.__str__(value)
    raise TypeError(f"the PostgreSQL store cannot store a {kind.__name__}")


def _element(value: Any) -> str:
    if value is None:
        return "NULL"
    text = _text(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _param(value: Any) -> Param:
    """A parameter in text format, its type left to the statement (no per-value oids, so
    one prepared statement serves every value)."""
    if value is None:
        return None
    text = _text(value)
    if "\x00" in text:  # libpq would cut the text there
        raise CrmError("The database refused the change (text with a NUL character).")
    return text.encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"the PostgreSQL store cannot store a {type(value).__name__}")


class _Table:
    """Statements (rendered to text once) and value conversions for one entity's table.

    Ids are read as text (``::text``): no UUID objects on either side of the wire.
    """

    def __init__(self, entity: Entity) -> None:
        self.entity = entity
        self.kinds = {f.name: f.kind for f in entity.fields}
        names = entity.field_names
        self.names = names
        self.key_index = names.index(entity.key)
        self.lists = tuple(i for i, f in enumerate(entity.fields) if f.kind == "id_list")
        table, key = _ident(entity.table), _ident(entity.key)
        cols = ", ".join(_ident(n) for n in names)
        self.cols = cols
        returned = ", ".join(
            _ident(f.name) + "::text"
            if f.kind in _ID_KINDS
            else _ident(f.name) + "::text[]"
            if f.kind == "id_list"
            else _ident(f.name)
            for f in entity.fields
        )
        values = ", ".join(f"${i}" for i in range(1, len(names) + 1))
        self.select = f"SELECT {returned} FROM {table}"
        self.get = f"{self.select} WHERE {key} = $1"
        self.insert = f"INSERT INTO {table} ({cols}) VALUES ({values}) RETURNING {returned}"
        self.delete = f"DELETE FROM {table} WHERE {key} = $1"
        # One batch of this table: its rows as a JSON array (see PostgresStore.insert_many).
        self.batch_head = (
            f"INSERT INTO {table} ({cols}) SELECT {cols} "
            f"FROM json_populate_recordset(NULL::{table}, $"
        )
        self._updates: dict[tuple[str, ...], str] = {}
        self._table, self._key, self._returned = table, key, returned

    def update(self, names: tuple[str, ...]) -> str:
        """The UPDATE … RETURNING text for one set of changed fields (rendered once)."""
        query = self._updates.get(names)
        if query is None:
            sets = ", ".join(f"{_ident(n)} = ${i}" for i, n in enumerate(names, start=1))
            query = (
                f"UPDATE {self._table} SET {sets} WHERE {self._key} = ${len(names) + 1} "
                f"RETURNING {self._returned}"
            )
            self._updates[names] = query
        return query

    def params(self, record: Record) -> list[Param]:
        return [_param(record.get(n)) for n in self.names]

    def record(self, row: Row) -> Record:
        record = dict(zip(self.names, row, strict=True))
        for i in self.lists:  # the only mutable values: the caller gets its own
            value = row[i]
            if value is not None:
                record[self.names[i]] = list(value)
        return record


class PostgresStore:
    """A CRM store in one PostgreSQL database (or one schema of it).

    ``conninfo`` names a database this store may own: :meth:`install_schema` drops and
    recreates the CRM tables there — in ``schema`` when given, so that several stores
    (the conversation slots of a process) share one database without sharing a table, an
    index or a row: none can block on another's uncommitted unique value or see it.
    Typical life: install_schema → load the seed → :meth:`mark_base` (commits) → per
    item: calls … :meth:`reset`.

    Speed comes from saying less, not from saying it faster (on a local server a round
    trip is mostly the two processes' CPU):

    * every exchange with the server goes through :meth:`_round_trip`, straight on libpq:
      statements are prepared once per session under the store's own names, parameters
      travel as text and rows are read by psycopg's (compiled) loaders, so a statement
      costs the client little more than a bare ``SELECT 1``;
    * the end of a transaction (the ``ROLLBACK`` and ``BEGIN`` of :meth:`reset`, or of a
      rollback to a savepoint) is not sent on its own: it rides in the same pipeline as
      the next statement;
    * every write is one statement, with no SAVEPOINT or RELEASE around it; a batch of
      inserts (a seed) is one prepared statement, its rows as JSON arrays;
    * records read or written in this transaction are remembered (this connection is the
      only writer of its database), and so is each query's answer until its table is
      written to: asking again costs nothing.

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
        from psycopg.adapt import Transformer  # lazy: psycopg, only if the store is used

        self._psycopg = psycopg
        options = (
            "-c timezone=UTC -c statement_timeout=30000 -c lock_timeout=10000"
            " -c client_encoding=UTF8"
        )
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
        self._pg = self._conn.pgconn
        self._pg.nonblocking = 0  # libpq waits for the server itself: no Python loop
        self._loader = Transformer(self._conn)
        self._tables = {t: _Table(BY_TABLE[t]) for t in LOAD_ORDER}
        self._counter = 0
        self._items = 0  # resets so far (see _vacuum)
        self._statements = 0  # names of prepared statements: s0, s1, …
        self._prepared: dict[str, bytes] = {}  # statement text → its prepared name
        self._queries: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        self._batches: dict[tuple[str, ...], str] = {}  # insert_many texts by tables
        # Commands and writes that go before the next statement, in its round trip.
        self._deferred: list[bytes | Call] = []
        self._journal: list[Call | bytes] = []  # the writes of the open transaction
        self._savepoints: list[tuple[str, int]] = []  # (name, journal length when opened)
        self._aborted = False  # a statement failed: the transaction needs a rollback
        self._ddl = False  # this transaction ran DDL (see _restart)
        # Rows of this transaction by (table, canonical id); None: known not to exist.
        self._known: dict[tuple[str, str], Row | None] = {}
        # Query answers of this transaction, per table, until that table is written to.
        self._found: dict[str, dict[tuple[str, tuple[Param, ...]], list[Row]]] = {}
        self._exec_simple(b"BEGIN")

    # -- plumbing ------------------------------------------------------------------
    def _round_trip(self, calls: Sequence[Call]) -> PGresult | None:
        """Run ``calls`` after the deferred commands, in one round trip; the last result.

        Every exchange with the server but :meth:`_exec_simple` goes through here (the
        benchmarks count round trips on it). A statement already prepared, with nothing
        deferred, is one libpq call; anything else is one pipeline.
        """
        if len(calls) == 1 and not self._deferred:
            text, params = calls[0]
            name = self._prepared.get(text)
            if name is not None:
                # NULLs are None, as in send_query_prepared (the stub says otherwise)
                result = self._pg.exec_prepared(name, params)  # type: ignore[arg-type]
                if result.status != _TUPLES_OK and result.status != _COMMAND_OK:
                    self._fail(result)
                return result
        return self._pipeline(calls)

    def _pipeline(self, calls: Sequence[Call]) -> PGresult | None:
        deferred, self._deferred = self._deferred, []
        if not calls and not deferred:
            return None
        pg = self._pg
        # What each result answers: a command or deferred write (True: its failure is
        # the session's, not the caller's), a statement to prepare (its text and name),
        # or one of ``calls`` (False).
        sent: list[bool | tuple[str, bytes]] = []
        pg.enter_pipeline_mode()
        try:
            if len(self._prepared) >= MAX_PREPARED:  # many query shapes (fuzzing): start over
                deferred.append(b"DEALLOCATE ALL")
            items = [*deferred, *calls]
            for i, item in enumerate(items):
                if isinstance(item, bytes):
                    if item == b"DEALLOCATE ALL":
                        self._prepared.clear()  # what follows prepares anew
                    pg.send_query_params(item, None)
                    sent.append(True)
                    continue
                text, params = item
                name = self._prepared.get(text)
                if name is None:
                    name = f"s{self._statements}".encode()
                    self._statements += 1
                    pg.send_prepare(name, text.encode(), None)
                    sent.append((text, name))
                pg.send_query_prepared(name, params)
                sent.append(i < len(deferred))
            pg.pipeline_sync()
            failed: tuple[PGresult, bool] | None = None
            last: PGresult | None = None
            for what in sent:
                last = pg.get_result()
                if last is None:  # the connection is gone
                    break
                while pg.get_result() is not None:
                    pass
                status = last.status
                if status == _FATAL_ERROR:
                    if failed is None:
                        failed = (last, what is True)
                elif isinstance(what, tuple):
                    if status == _COMMAND_OK:
                        self._prepared[what[0]] = what[1]
                elif what is True and last.command_status == b"DEALLOCATE ALL":
                    self._prepared.clear()  # prepared before it in this pipeline: gone too
            if last is None:
                self._aborted = True
                message = pg.error_message.decode("utf-8", "replace").strip()
                raise self._psycopg.OperationalError(f"PostgreSQL connection lost: {message}")
            sync = pg.get_result()
            if sync is not None and sync.status == _PIPELINE_SYNC:
                pg.get_result()
        finally:
            try:
                pg.exit_pipeline_mode()
            except self._psycopg.Error:
                self._aborted = True
        if failed is not None:
            result, session = failed
            if session:  # a deferred write (a seed) failed: no caller to blame
                self._aborted = True
                raise self._psycopg.errors.error_from_result(result, encoding="utf-8")
            self._fail(result)
        return last if calls else None

    def _fail(self, result: PGresult) -> None:
        """Raise what a failed statement means; the transaction needs a rollback now."""
        self._aborted = True
        exc = self._psycopg.errors.error_from_result(result, encoding="utf-8")
        if isinstance(exc, self._psycopg.errors.IntegrityError | self._psycopg.errors.DataError):
            # Defence in depth fired: the Python rules let something through.
            diag = exc.diag
            raise CrmError(
                f"The database refused the change ({diag.constraint_name or diag.sqlstate})."
            ) from exc
        raise exc

    def _exec_simple(self, command: bytes) -> None:
        """Run ``command`` (no parameters, maybe several statements) in one round trip,
        after the deferred commands."""
        if self._deferred:
            self._round_trip(())
        result = self._pg.exec_(command)
        if result.status != _COMMAND_OK and result.status != _TUPLES_OK:
            self._fail(result)

    def _run(self, text: str, params: Sequence[Param]) -> list[Row]:
        """One statement; its rows."""
        result = self._round_trip(((text, params),))
        assert result is not None
        if not result.ntuples:
            return []
        loader = self._loader
        loader.set_pgresult(result)
        return loader.load_rows(0, result.ntuples, tuple)

    def _write(self, table: str, text: str, params: Sequence[Param]) -> list[Row]:
        rows = self._run(text, params)
        self._journal.append((text, params))
        self._found.pop(table, None)
        return rows

    def _restart(self, end: bytes) -> None:
        """End the transaction (COMMIT or ROLLBACK) and begin the next, with the next
        statement. After DDL the session's prepared statements go too: their tables may
        be gone or different."""
        deferred = self._deferred
        if end == b"ROLLBACK" and b"BEGIN" in deferred:
            # This transaction has not reached the server yet: drop its deferred writes
            # (an item that sent nothing must not send its seed with the next item's
            # statement), and the pending ROLLBACK and BEGIN serve again.
            del deferred[len(deferred) - deferred[::-1].index(b"BEGIN") :]
        else:
            deferred += [end, b"DEALLOCATE ALL", b"BEGIN"] if self._ddl else [end, b"BEGIN"]
        self._ddl = False
        self._aborted = False

    def _new_transaction(self, end: bytes) -> None:
        self._savepoints.clear()
        self._journal.clear()
        self._known.clear()
        self._found.clear()
        self._restart(end)

    def close(self) -> None:
        if not self._conn.closed:
            self._conn.close()

    def install_schema(self) -> None:
        """Drop and recreate the CRM tables (inside the current transaction)."""
        self._known.clear()
        self._found.clear()
        self._ddl = True
        create = f"CREATE SCHEMA IF NOT EXISTS {self._schema};\n" if self._schema else ""
        command = (create + schema_sql()).encode()
        self._exec_simple(command)
        self._journal.append(command)

    def mark_base(self) -> None:
        """Commit: the current content becomes what :meth:`reset` returns to."""
        self._new_transaction(b"COMMIT")
        self._round_trip(())  # now: others may read the committed base

    def reset(self) -> None:
        self._new_transaction(b"ROLLBACK")  # the per-item isolation cost, sent later
        self._items += 1
        if self._items % VACUUM_EVERY == 0:
            self._vacuum()

    def _vacuum(self) -> None:
        """Reclaim the rows of rolled-back items (two round trips, every few hundred).

        Every item's writes are rolled back, but their dead rows stay in the tables and
        indexes, and autovacuum never hears of them: a session that is never idle outside
        a transaction never reports its statistics. Without this, every scan slows as a
        long run goes on.
        """
        deferred = self._deferred
        if deferred[-1:] != [b"BEGIN"] or self._ddl:
            return
        deferred.pop()
        # Only housekeeping: on failure the session is outside a transaction all the same.
        with contextlib.suppress(self._psycopg.Error):
            self._exec_simple(b"VACUUM " + ", ".join(_ident(t) for t in LOAD_ORDER).encode())
        self._aborted = False
        self._deferred.append(b"BEGIN")

    # -- reads ---------------------------------------------------------------------
    def get(self, table: str, key: str) -> Record | None:
        t = self._tables[table]
        try:
            row = self._known[(table, key)]
        except KeyError:
            rows = self._run(t.get, (_param(key),))
            row = rows[0] if rows else None
            self._known[(table, key)] = row
        return t.record(row) if row is not None else None

    def _find_query(self, table: str, shape: tuple[tuple[str, str], ...]) -> str:
        """The SQL text of a query shape (fields and operators), composed once and cached."""
        query = self._queries.get((table, shape))
        if query is not None:
            return query
        t = self._tables[table]
        templates = {
            "eq": "{} = ${}",
            "ieq": 'lower({} COLLATE "C") = ${}',
            "icontains": 'strpos(lower({} COLLATE "C"), ${}) > 0',
            "ge": "{} >= ${}",
            "le": "{} <= ${}",
        }
        clauses: list[str] = []
        for i, (field, op) in enumerate(shape, start=1):
            if field not in t.kinds:
                raise KeyError(f"{table} has no field {field}")
            clauses.append(templates[op].format(_ident(field), i))
        query = t.select
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += " ORDER BY seq"
        self._queries[(table, shape)] = query
        return query

    def find(self, table: str, where: Sequence[Cond] = ()) -> list[Record]:
        t = self._tables[table]
        query = self._find_query(table, tuple((c.field, c.op) for c in where))
        params = tuple(_param(c.value) for c in where)
        answers = self._found.get(table)
        rows = answers.get((query, params)) if answers is not None else None
        if rows is None:
            rows = self._run(query, params)
            self._found.setdefault(table, {})[(query, params)] = rows
            key, known = t.key_index, self._known
            for row in rows:
                known[(table, row[key])] = row
        return [t.record(row) for row in rows]

    # -- writes --------------------------------------------------------------------
    def insert(self, table: str, record: Record) -> None:
        t = self._tables[table]
        (row,) = self._write(table, t.insert, t.params(record))
        self._known[(table, row[t.key_index])] = row

    def insert_many(self, records: Mapping[str, Sequence[Record]]) -> None:
        """One prepared statement for every table: a data-modifying CTE per table, in
        load order, each table's rows one JSON array (``json_populate_recordset``).

        Foreign keys are checked at the end of the statement, so rows may point at rows
        of an earlier table in the same batch. Rows are not remembered (no RETURNING):
        most batches are seeds that are only partly read afterwards.

        The statement is not sent now but with the next one, in its round trip: a seed
        costs no round trip of its own. Should the database refuse it, the next
        statement raises the database's error (not a :class:`CrmError`: no tool call
        is to blame for a seed).
        """
        tables = tuple(t for t in LOAD_ORDER if records.get(t))
        if not tables:
            return
        params = [
            json.dumps(
                [{n: r.get(n) for n in self._tables[t].names} for r in records[t]],
                default=_json_default,
                allow_nan=False,
            ).encode()
            for t in tables
        ]
        call = (self._batch_query(tables), params)
        self._deferred.append(call)  # sent with the next statement
        self._journal.append(call)
        for t in tables:
            self._found.pop(t, None)

    def _batch_query(self, tables: tuple[str, ...]) -> str:
        """The statement for one set of tables (at most 255 sets, each prepared once)."""
        query = self._batches.get(tables)
        if query is None:
            parts = [
                f"{self._tables[t].batch_head}{i}::json)" for i, t in enumerate(tables, start=1)
            ]
            *ctes, query = parts
            if ctes:
                query = (
                    "WITH "
                    + ", ".join(f"w{i} AS ({part})" for i, part in enumerate(ctes))
                    + " "
                    + query
                )
            self._batches[tables] = query
        return query

    def update(self, table: str, key: str, changes: Record) -> None:
        t = self._tables[table]
        names = tuple(n for n in changes if n in t.kinds)
        if not names:
            return
        params = [*(_param(changes[n]) for n in names), _param(key)]
        rows = self._write(table, t.update(names), params)
        self._known[(table, key)] = None  # gone, or moved to a new key
        if rows:
            self._known[(table, rows[0][t.key_index])] = rows[0]

    def delete(self, table: str, key: str) -> None:
        self._write(table, self._tables[table].delete, (_param(key),))
        self._known[(table, key)] = None

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
        self._known.clear()
        self._found.clear()
        self._restart(b"ROLLBACK")
        if not keep:
            return  # the rollback goes with the next statement
        calls = [c for c in keep if not isinstance(c, bytes)]
        if len(calls) == len(keep):
            self._round_trip(calls)  # the whole replay in one round trip
        else:  # DDL in the journal: simple queries, one by one (install_schema only)
            for entry in keep:
                if isinstance(entry, bytes):
                    self._ddl = True
                    self._exec_simple(entry)
                else:
                    self._round_trip((entry,))
        self._journal = keep

    def release(self, name: str) -> None:
        self._pop(name)

    def dump(self) -> dict[str, list[Record]]:
        return {t: self.find(t) for t in LOAD_ORDER}


__all__ = ["PostgresStore", "schema_sql"]
