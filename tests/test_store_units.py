"""The store interface beneath the CRM: batches, savepoints and re-reads, on every store.

The PostgreSQL store keeps savepoints as a journal (a rollback replays the writes before
the savepoint) and remembers the rows of its transaction; these tests pin that it still
behaves exactly like the memory store, including after a change the database refuses.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pytest_crmbench.crm import CrmError, Store
from pytest_crmbench.crm.entities import Record
from pytest_crmbench.crm.seed import SeedWorld
from pytest_crmbench.crm.store import Cond, atomic

STAMP = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def _client(n: int, email: str | None = None) -> Record:
    return {
        "client_id": f"00000000-0000-4000-8000-{n:012d}",
        "name": f"Batch Client {n}",
        "email": email or f"batch{n}@example.com",
        "status": "Prospect",
        "industry": None,
        "phone": None,
        "address": None,
        "owner": None,
        "created_date": STAMP,
    }


def _opportunity(n: int, client: Record) -> Record:
    return {
        "opportunity_id": f"00000000-0000-4000-9000-{n:012d}",
        "name": f"Batch Deal {n}",
        "client_id": client["client_id"],
        "stage": "Prospecting",
        "amount": 1000.0 * n,
        "close_date": None,
        "probability": None,
        "owner": None,
        "notes": None,
        "created_at": STAMP,
    }


def _tail(store: Store, table: str, n: int) -> list[dict[str, Any]]:
    return store.find(table)[-n:]


def test_insert_many_spans_tables_and_keeps_order(store: Store, world: SeedWorld) -> None:
    clients = [_client(i) for i in range(1, 4)]
    # Opportunities point at clients of the same batch; the mapping's order is not load order.
    opps = [_opportunity(i, clients[i % 3]) for i in range(1, 6)]
    store.insert_many({"opportunities": opps, "clients": clients, "notes": []})
    assert _tail(store, "clients", 3) == clients
    assert _tail(store, "opportunities", 5) == opps
    assert len(store.find("clients")) == len(world.tables["clients"]) + 3
    assert store.get("opportunities", opps[2]["opportunity_id"]) == opps[2]
    store.insert_many({})  # nothing to do
    store.reset()
    assert store.get("clients", clients[0]["client_id"]) is None
    assert len(store.find("opportunities")) == len(world.tables["opportunities"])


def test_rollback_to_undoes_writes_and_keeps_earlier_ones(store: Store) -> None:
    kept, dropped = _client(11), _client(12)
    outer = store.savepoint()
    store.insert("clients", kept)
    inner = store.savepoint()
    store.insert("clients", dropped)
    store.update("clients", kept["client_id"], {"status": "Active"})
    assert store.get("clients", kept["client_id"])["status"] == "Active"  # type: ignore[index]
    store.rollback_to(inner)
    assert store.get("clients", dropped["client_id"]) is None
    assert store.get("clients", kept["client_id"]) == kept
    store.release(outer)
    assert _tail(store, "clients", 1) == [kept]


def test_refused_write_rolls_back_its_unit_only(store: Store, world: SeedWorld) -> None:
    """The unique email index is the database's last word; the memory store has none."""
    first = _client(21)
    store.insert("clients", first)
    taken = world.tables["clients"][0]["email"].upper()
    try:
        with atomic(store):
            store.update("clients", first["client_id"], {"name": "Renamed"})
            store.insert("clients", _client(22, email=taken))
    except CrmError as exc:
        assert store.backend == "postgres"
        assert "clients_email_lower_key" in str(exc)
        assert store.get("clients", first["client_id"]) == first
        assert store.find("clients", [Cond("email", "ieq", taken.lower())]) == [
            world.tables["clients"][0]
        ]
    else:
        assert store.backend == "memory"
    # Either way the transaction is usable afterwards.
    store.update("clients", first["client_id"], {"status": "Inactive"})
    assert store.get("clients", first["client_id"])["status"] == "Inactive"  # type: ignore[index]


def test_many_units_in_one_item(store: Store) -> None:
    """A long item: hundreds of atomic units, some rolled back, on one transaction."""
    expected: list[Record] = []
    for i in range(300):
        record = _client(1000 + i)
        name = store.savepoint()
        store.insert("clients", record)
        if i % 7 == 0:
            store.rollback_to(name)
        else:
            store.release(name)
            expected.append(record)
    assert _tail(store, "clients", len(expected)) == expected


def test_deleted_row_is_gone_until_rolled_back(store: Store, world: SeedWorld) -> None:
    note = world.tables["notes"][0]
    name = store.savepoint()
    store.delete("notes", note["note_id"])
    assert store.get("notes", note["note_id"]) is None
    assert note not in store.find("notes")
    store.rollback_to(name)
    assert store.get("notes", note["note_id"]) == note
    assert store.find("notes") == world.tables["notes"]


@pytest.mark.parametrize("key", ["00000000-0000-4000-8000-00000000dead"])
def test_missing_key_stays_missing_until_inserted(store: Store, key: str) -> None:
    assert store.get("clients", key) is None
    record = {**_client(0), "client_id": key}
    store.insert("clients", record)
    assert store.get("clients", key) == record


def _prepared(store: Store) -> set[str]:
    """The statements the store's own PostgreSQL session holds prepared."""
    conn = store._conn  # type: ignore[attr-defined]
    return {row[0] for row in conn.execute("SELECT statement FROM pg_prepared_statements")}


POSTGRES_ONLY = pytest.mark.parametrize(
    "store",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("docker", marks=[pytest.mark.postgres, pytest.mark.docker]),
    ],
    indirect=True,
)


@POSTGRES_ONLY
def test_prepared_statements_outlive_reset(store: Store, world: SeedWorld) -> None:
    """A rollback must not cost the session its prepared statements (psycopg drops them
    on any ROLLBACK it sees; the store rolls back past it when no DDL ran)."""
    active = [c for c in world.tables["clients"] if c["status"] == "Active"]
    for _ in range(8):
        assert store.find("clients", [Cond("status", "ieq", "active")]) == active
    before = _prepared(store)
    assert any("lower" in text and '"status"' in text for text in before)
    store.reset()
    assert _prepared(store) >= before
    assert store.find("clients", [Cond("status", "ieq", "active")]) == active


@POSTGRES_ONLY
def test_rolled_back_schema_install_leaves_a_working_store(store: Store, world: SeedWorld) -> None:
    """DDL rolled back: the statements prepared on the dropped tables must not be reused."""
    store.install_schema()  # type: ignore[attr-defined]
    for _ in range(8):
        assert store.find("clients", [Cond("status", "ieq", "active")]) == []
    store.reset()
    active = [c for c in world.tables["clients"] if c["status"] == "Active"]
    for _ in range(8):
        assert store.find("clients", [Cond("status", "ieq", "active")]) == active
    assert len(store.find("clients")) == len(world.tables["clients"])


def _count_round_trips(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A counter of the store's round trips to its server (from now on)."""
    count = [0]
    round_trip, exec_simple = store._round_trip, store._exec_simple  # type: ignore[attr-defined]

    def counted_round_trip(calls: Any) -> Any:
        count[0] += 1
        return round_trip(calls)

    def counted_exec_simple(command: bytes) -> None:
        count[0] += 1
        exec_simple(command)

    monkeypatch.setattr(store, "_round_trip", counted_round_trip)
    monkeypatch.setattr(store, "_exec_simple", counted_exec_simple)
    return count


@POSTGRES_ONLY
def test_reset_and_seed_travel_with_the_next_statement(
    store: Store, world: SeedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per item: ROLLBACK, BEGIN, the seed batch and the first query share one round trip."""
    clients = [_client(i) for i in range(31, 34)]
    store.find("clients", [Cond("status", "ieq", "active")])  # prepared beforehand
    store.insert("clients", _client(30))
    store.savepoint()  # left open: reset closes it
    count = _count_round_trips(store, monkeypatch)
    store.reset()
    store.insert_many({"clients": clients})
    assert count[0] == 0
    active = [c for c in world.tables["clients"] if c["status"] == "Active"]
    assert store.find("clients", [Cond("status", "ieq", "active")]) == active
    assert count[0] == 1
    assert store.get("clients", _client(30)["client_id"]) is None  # rolled back
    assert _tail(store, "clients", 3) == clients
    assert store.find("clients", [Cond("status", "ieq", "active")]) == active
    assert count[0] == 3  # the get and the tail; the repeated query was answered from memory


@POSTGRES_ONLY
def test_a_refused_seed_fails_the_next_statement_and_reset_recovers(
    store: Store, world: SeedWorld
) -> None:
    import psycopg

    duplicate = world.tables["clients"][0]
    store.insert_many({"clients": [_client(41), duplicate]})
    with pytest.raises(psycopg.errors.UniqueViolation):  # a database error, not a CrmError
        store.find("clients")
    store.reset()
    assert store.find("clients") == world.tables["clients"]
    assert store.get("clients", _client(41)["client_id"]) is None


@POSTGRES_ONLY
def test_the_seed_of_an_item_that_sent_nothing_is_never_sent(
    store: Store, world: SeedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An item without statements: its (here refused) seed goes nowhere, and the next
    item's reset, seed and first query still take one round trip."""
    store.insert_many({"clients": [world.tables["clients"][0]]})  # a duplicate
    store.reset()
    count = _count_round_trips(store, monkeypatch)
    store.insert_many({"clients": [_client(61)]})
    assert store.find("clients") == [*world.tables["clients"], _client(61)]
    assert count[0] == 1


@POSTGRES_ONLY
def test_rolled_back_rows_are_vacuumed_away(
    store: Store, world: SeedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every item's rows are rolled back; the store vacuums so the tables do not grow."""
    from pytest_crmbench.postgres import store as pg_store

    monkeypatch.setattr(pg_store, "VACUUM_EVERY", 4)
    conn = store._conn  # type: ignore[attr-defined]

    def pages() -> int:
        return int(conn.execute("SELECT pg_relation_size('clients') / 8192").fetchone()[0])

    for item in range(24):  # 24 items × 100 rows: 40+ pages of dead rows if never vacuumed
        store.reset()
        store.insert_many({"clients": [_client(10_000 + 100 * item + i) for i in range(100)]})
        assert len(store.find("clients")) == len(world.tables["clients"]) + 100
    store.reset()
    assert store.find("clients") == world.tables["clients"]
    assert pages() <= 12


@POSTGRES_ONLY
def test_prepared_statements_stay_bounded(
    store: Store, world: SeedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every query shape is prepared once; past the bound the session starts over."""
    from pytest_crmbench.postgres import store as pg_store

    monkeypatch.setattr(pg_store, "MAX_PREPARED", 5)
    rows = list(world.tables["clients"])
    for n, field in enumerate(["name", "email", "status", "industry", "phone", "address"]):
        found = store.find("clients", [Cond(field, "icontains", "a")])
        assert found == [c for c in rows if "a" in (c[field] or "").lower()]
        rows.append(_client(50 + n))
        store.insert("clients", rows[-1])
    assert len(_prepared(store)) <= 5 + 2
