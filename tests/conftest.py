"""Fixtures for the project's own tests: seeded CRMs on every store.

``backend`` runs a test on the memory store, on PostgreSQL (embedded server, or
``CRMBENCH_POSTGRES_URL``) and, marked ``docker``, on a container started through
testcontainers from ``CRMBENCH_TEST_DOCKER_IMAGE``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from pytest_crmbench.backends import open_memory_store, open_postgres_store
from pytest_crmbench.crm import CRM, DeterministicIds, FixedClock, Store, load_seed_world
from pytest_crmbench.crm.seed import SeedWorld

pytest_plugins = ["pytester"]

STORE_PARAMS = [
    pytest.param("memory", id="memory"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("docker", id="docker", marks=[pytest.mark.postgres, pytest.mark.docker]),
]


@pytest.fixture(scope="session")
def world() -> SeedWorld:
    return load_seed_world()


class _Servers:
    """Lazily started PostgreSQL servers, one per provider, for the whole session."""

    def __init__(self) -> None:
        self.servers: dict[str, object] = {}
        self.stores: dict[str, Store] = {}

    def url(self, kind: str, dbname: str) -> str:
        from pytest_crmbench.postgres import create_database, docker_available, start_server

        if kind not in self.servers:
            if kind == "docker":
                image = os.environ.get("CRMBENCH_TEST_DOCKER_IMAGE")
                if not image:
                    pytest.skip("CRMBENCH_TEST_DOCKER_IMAGE is not set (see .ci/run)")
                if not docker_available():
                    pytest.skip("no Docker engine answers")
                self.servers[kind] = start_server("docker", image=image)
            elif os.environ.get("CRMBENCH_POSTGRES_URL"):
                self.servers[kind] = start_server("url")
            else:
                self.servers[kind] = start_server("embedded")
        server = self.servers[kind]
        return create_database(server.admin_url, dbname)  # type: ignore[attr-defined]

    def close(self) -> None:
        for store in self.stores.values():
            store.close()
        for server in self.servers.values():
            server.stop()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def pg_servers() -> Iterator[_Servers]:
    servers = _Servers()
    yield servers
    servers.close()


def _worker_suffix() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def seeded_store(pg_servers: _Servers, world: SeedWorld):  # type: ignore[no-untyped-def]
    """A factory of session-wide seeded stores, one per backend kind."""

    def get(kind: str) -> Store:
        if kind not in pg_servers.stores:
            if kind == "memory":
                pg_servers.stores[kind] = open_memory_store(world)
            else:
                url = pg_servers.url(kind, f"crmbench_test_{kind}_{_worker_suffix()}")
                pg_servers.stores[kind] = open_postgres_store(url, world)
        return pg_servers.stores[kind]

    return get


@pytest.fixture(params=STORE_PARAMS)
def store(request: pytest.FixtureRequest, seeded_store) -> Iterator[Store]:  # type: ignore[no-untyped-def]
    """The seeded store of one backend, reset to the seed world after the test."""
    s = seeded_store(request.param)
    s.reset()
    yield s
    s.reset()


@pytest.fixture
def crm(store: Store, world: SeedWorld, request: pytest.FixtureRequest) -> CRM:
    """A CRM on the seed world, today = the seed's reference date, deterministic ids."""
    return CRM(
        store, clock=FixedClock(world.reference_date), ids=DeterministicIds(request.node.nodeid)
    )
