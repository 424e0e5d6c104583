"""Per-process plugin state kept in ``config.stash`` (no module globals)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_crmbench.backends import open_memory_store, open_postgres_store
from pytest_crmbench.crm.seed import SeedWorld
from pytest_crmbench.crm.store import Store
from pytest_crmbench.options import Settings
from pytest_crmbench.postgres.handoff import Published, publish, read_published
from pytest_crmbench.postgres.server import redact_url
from pytest_crmbench.results.stream import ResultsStream
from pytest_crmbench.runner.records import ItemResult

if TYPE_CHECKING:
    from pytest_crmbench.postgres import PostgresServer


@dataclass
class CrmState:
    settings: Settings
    is_worker: bool
    worker_id: str
    run_id: str
    results: list[ItemResult] = field(default_factory=list)
    previous: list[ItemResult] = field(default_factory=list)  # resumed from --crm-results
    stream: ResultsStream | None = None
    stream_started: bool = False  # this run's header is written
    answer_key_mark: int = 0  # answer-key reads before this run are not its agent's
    dataset_sent: bool = False  # the dataset's identity went home on a report
    resumed_header: dict[str, Any] | None = None  # the header of the resumed run
    latest: list[ItemResult] = field(default_factory=list)  # resumed + this run, by case
    server: PostgresServer | None = None  # the server this process started (and must stop)
    admin_url: str | None = None  # PostgreSQL server to create worker databases on
    # The run started that server (embedded or a container) and discards it whole at the
    # end: its database needs no DROP.
    disposable_server: bool = False
    provider: str | None = None
    # xdist: the controller starts the server in the background (the workers boot
    # meanwhile) and publishes it in this file; a worker reads it when it needs the server.
    handoff: Path | None = None
    server_thread: threading.Thread | None = field(default=None, repr=False)
    server_error: BaseException | None = field(default=None, repr=False)
    provider_notes: list[str] = field(default_factory=list)  # e.g. a Docker → embedded fallback
    notes_shown: int = 0  # how many of them the report header showed
    dataset_info: dict[str, Any] = field(default_factory=dict)
    gate: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    stores: list[Store] = field(default_factory=list)
    stores_db: list[str] = field(default_factory=list)
    database_url: str | None = None  # this process's database (its stores are schemas)
    sequence: dict[str, int] = field(default_factory=dict)  # stream -> items finished in it
    stream_position: dict[str, int] = field(default_factory=dict)  # test id -> stream order
    # Conversation slots open stores from their own threads (--crm-concurrency).
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    schema_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Where each item's full result lies on disk (node id -> offset in ``stream``, or in
    # ``spool_stream`` when the user asked for no stream): memory keeps slim copies only.
    offsets: dict[str, int] = field(default_factory=dict)
    spool_stream: ResultsStream | None = None
    # node id -> the slim copy the item holds, until the session collects its result (one
    # copy per item, not one per holder; a plain run only)
    slim_of: dict[str, ItemResult] = field(default_factory=dict)
    # node id -> (the full result, its JSON text), until the session writes it to disk
    text_of: dict[str, tuple[ItemResult, str]] = field(default_factory=dict)

    def spool(self) -> ResultsStream:
        """This run's private file of full results (no ``--crm-results``), made on first use."""
        if self.spool_stream is None:
            folder = tempfile.mkdtemp(prefix="crmbench-results-")
            self.spool_stream = ResultsStream(Path(folder) / "results.jsonl", durable=False)
        return self.spool_stream

    def ensure_server(self) -> str:
        """Admin URL of the PostgreSQL server: the one the controller handed over (an
        xdist worker), else one this process starts if it has none yet."""
        if self.admin_url is None and self.is_worker and self.handoff is not None:
            # Published before the controller schedules the first item: no wait, normally.
            found = read_published(self.handoff, 2 * START_TIMEOUT + 10)
            self.admin_url, self.provider = found.admin_url, found.description
            self.disposable_server = found.disposable
        if self.admin_url is None:
            from pytest_crmbench.postgres import start_server  # lazy: psycopg, only for PostgreSQL

            mode = self.settings.postgres
            url = None
            if mode.startswith(("postgres://", "postgresql://")):
                mode, url = "url", self.settings.postgres
            # A given URL either answers soon or not at all; a provider may need to start.
            timeout = URL_TIMEOUT if url else START_TIMEOUT
            self.server = start_server(
                mode, url=url, image=self.settings.postgres_image, timeout=timeout
            )
            self.admin_url = self.server.admin_url
            self.disposable_server = self.server.provider != "url"
            self.provider = self.server.description
            self.provider_notes = list(self.server.notes)
        return self.admin_url

    def start_server_in_background(self) -> None:
        """An xdist controller: start the server while the workers boot, and publish it
        (or why there is none) in :attr:`handoff`; :meth:`wait_server` joins."""
        self.handoff = handoff = Path(tempfile.mkdtemp(prefix="crmbench-handoff-")) / "server.json"

        def start() -> None:
            try:
                url = self.ensure_server()
            except BaseException as exc:
                self.server_error = exc
                publish(handoff, None, error=describe_error(exc))
                return
            publish(handoff, Published(url, self.provider or "", self.disposable_server))

        self.server_thread = threading.Thread(target=start, name="crmbench-postgres", daemon=True)
        self.server_thread.start()

    def wait_server(self) -> str:
        """The server's admin URL once the background start ended; its error if it failed."""
        if self.server_thread is not None:
            self.server_thread.join()
        if self.server_error is not None:
            raise self.server_error
        return self.ensure_server()

    def open_store(self, world: SeedWorld, suffix: str = "") -> Store:
        """A store over ``world`` on this run's backend: memory, or on PostgreSQL a schema
        ``crm<suffix>`` of this process's database on the run's server (one database per
        process, dropped at exit; its slots and the Arc world get schemas of their own,
        which — unlike databases — are not created one at a time by the server nor
        copied from a template)."""
        store: Store
        if self.settings.backend == "memory":
            store = open_memory_store(world)
        else:
            with self.lock:  # one server start and one database, even when slots ask at once
                url = self._database()
            # One schema at a time: slots asking at once all waited for the last of them
            # (DDL and seeding contend); in turn, the first slot starts work at once.
            with self.schema_lock:
                store = open_postgres_store(url, world, schema=f"crm{suffix}".lower())
        with self.lock:
            self.stores.append(store)
        return store

    def _database(self) -> str:
        """URL of this process's database on the run's server (created on first use)."""
        if self.database_url is None:
            from pytest_crmbench.postgres import create_database  # lazy: psycopg

            name = f"crmbench_{self.run_id}_{self.worker_id}".lower()
            self.database_url = create_database(self.ensure_server(), name)
            self.stores_db.append(name)
        return self.database_url

    def stop(self) -> None:
        if self.server_thread is not None:  # a server still coming up is stopped below
            self.server_thread.join(2 * START_TIMEOUT)
        if self.handoff is not None and not self.is_worker:
            shutil.rmtree(self.handoff.parent, ignore_errors=True)
        for store in self.stores:
            with contextlib.suppress(Exception):  # best effort at exit
                store.close()
        if self.admin_url and self.stores_db and not self.disposable_server:
            from pytest_crmbench.postgres import drop_database  # lazy: psycopg

            for name in self.stores_db:
                with contextlib.suppress(Exception):
                    drop_database(self.admin_url, name)
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.stream is not None:
            self.stream.close()
        if self.spool_stream is not None:
            self.spool_stream.close()
            shutil.rmtree(self.spool_stream.path.parent, ignore_errors=True)
            self.spool_stream = None


def reach_postgres(state: CrmState) -> None:
    """Reach PostgreSQL once, before the first item (after a start in the background, if
    one runs): if it cannot be had, one message naming the provider and the cause,
    instead of the same error on every item."""
    try:
        state.wait_server()
    except Exception as exc:
        given = redact_url(state.settings.postgres)
        raise pytest.UsageError(
            f"--crm-postgres {given}: PostgreSQL could not be reached: {describe_error(exc)} "
            "(or run without PostgreSQL: --crm-backend memory)"
        ) from None


def describe_error(exc: BaseException) -> str:
    """An exception as one line: its message, else its type."""
    return " ".join(str(exc).split()) or type(exc).__name__


URL_TIMEOUT = 15.0
START_TIMEOUT = 60.0

STATE = pytest.StashKey[CrmState]()
RESULT = pytest.StashKey[ItemResult]()  # the item's full result, then its slim copy
RESULT_TEXT = pytest.StashKey[str]()  # the full result's JSON text (a plain run's results file)
KEYWORDS = pytest.StashKey[Mapping[str, Any]]()  # the keywords of the item's first report
SLIM = pytest.StashKey[ItemResult]()  # the slim copy made at setup (the JSON report's metadata)
STREAM = pytest.StashKey[str]()  # the ordered stream an item runs in (feedback runs)
ARC_DATASET = pytest.StashKey[bool]()  # the collected dataset holds conversations imported from Arc


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


def worker_id(config: pytest.Config) -> str:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return str(workerinput.get("workerid", "gw"))
    return os.environ.get("PYTEST_XDIST_WORKER", "main")
