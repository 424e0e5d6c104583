"""Seeded CRM stores on either backend, ready for per-item isolation.

The runner, the CLI, the pytest fixtures, the benchmarks and the tests all open stores
here, so "a CRM with the seed world loaded" means the same thing everywhere.
"""

from __future__ import annotations

from typing import Literal

from pytest_crmbench.crm.memory import MemoryStore
from pytest_crmbench.crm.seed import SeedWorld, load_seed_world
from pytest_crmbench.crm.store import Store

Backend = Literal["memory", "postgres"]
BACKENDS: tuple[Backend, ...] = ("memory", "postgres")


def open_memory_store(world: SeedWorld | None = None) -> MemoryStore:
    """A memory store holding the seed world as its base state."""
    store = MemoryStore()
    (world or load_seed_world()).load_into(store)
    store.mark_base()
    return store


def open_postgres_store(
    url: str, world: SeedWorld | None = None, *, schema: str | None = None
) -> Store:
    """A PostgreSQL store on the database at ``url`` (which it owns; with ``schema``,
    only that schema of it), seeded and committed."""
    from pytest_crmbench.postgres.store import PostgresStore  # lazy: psycopg, only if used

    store = PostgresStore(url, schema=schema)
    try:
        store.install_schema()
        (world or load_seed_world()).load_into(store)
        store.mark_base()
    except BaseException:
        store.close()
        raise
    return store
