"""Tests of pytest_crmbench.postgres: URL, Docker and embedded PostgreSQL servers.

Docker tests need an engine and a local image named by CRMBENCH_TEST_DOCKER_IMAGE (no image
registry is assumed reachable); they are skipped otherwise.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pytest_crmbench.postgres import (
    PostgresProviderError,
    PostgresServer,
    cleanup_orphans,
    create_database,
    docker_available,
    docker_provider,
    drop_database,
    embedded_provider,
    provider,
    redact_url,
    start_server,
    url_provider,
    with_database,
)
from pytest_crmbench.postgres.handoff import Published, publish, read_published

DOCKER_IMAGE_ENV = "CRMBENCH_TEST_DOCKER_IMAGE"


def _alive(pid: int) -> bool:
    """Running and not a zombie (pid 1 may take a while to reap an exited postmaster)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return not Path("/proc/self").exists()
    return state not in ("Z", "X")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _no_env_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's CRMBENCH_POSTGRES_URL must not change which provider a test gets."""
    monkeypatch.delenv(url_provider.URL_ENV, raising=False)


@pytest.fixture(scope="module")
def embedded() -> Iterator[PostgresServer]:
    server = start_server("embedded", timeout=60)
    yield server
    server.stop()


# --------------------------------------------------------------------------- no server


def test_redact_url_drops_passwords() -> None:
    assert redact_url("postgresql://bob:s3cret@db:5432/crm") == "postgresql://bob@db:5432/crm"
    redacted = redact_url("postgresql://bob@db/crm?password=s3cret&sslmode=require")
    assert "s3cret" not in redacted
    assert "sslmode=require" in redacted


def test_with_database_keeps_user_host_and_options() -> None:
    url = "postgresql://postgres@/postgres?host=/tmp/x/sock&port=5432"
    assert with_database(url, "crm_1") == "postgresql://postgres@/crm_1?host=/tmp/x/sock&port=5432"


def test_unknown_mode_is_an_error() -> None:
    with pytest.raises(PostgresProviderError, match="unknown PostgreSQL provider mode"):
        start_server("sqlite")


def test_url_mode_needs_a_url() -> None:
    with pytest.raises(PostgresProviderError, match=r"url provider.*CRMBENCH_POSTGRES_URL"):
        start_server("url")


def test_url_mode_rejects_non_postgres_urls() -> None:
    with pytest.raises(PostgresProviderError, match="not a PostgreSQL URL"):
        start_server("url", url="mysql://root:pw@localhost/db")


def test_invalid_database_names_are_rejected() -> None:
    for name in ("", "Upper", "semi;colon", "x" * 51, 'quo"te'):
        with pytest.raises(ValueError, match="invalid database name"):
            create_database("postgresql://nobody@127.0.0.1:1/x", name)
        with pytest.raises(ValueError, match="invalid database name"):
            drop_database("postgresql://nobody@127.0.0.1:1/x", name)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://crm:topsecret@127.0.0.1:{port}/crm",
        "postgresql://crm:topsecret@/crm?host=/tmp/crmbench-no-such-dir&port=5432",
    ],
    ids=["closed-port", "missing-socket-dir"],
)
def test_unreachable_url_fails_fast(url: str) -> None:
    url = url.format(port=_free_port())
    began = time.monotonic()
    with pytest.raises(PostgresProviderError) as info:
        start_server("url", url=url, timeout=5)
    assert time.monotonic() - began < 5
    message = str(info.value)
    assert message.startswith("url provider:")
    assert "topsecret" not in message


def test_a_server_is_handed_over_through_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "server.json"
    with pytest.raises(PostgresProviderError, match="no PostgreSQL server was handed over"):
        read_published(path, timeout=0.05)
    url = "postgresql://crm:topsecret@127.0.0.1:5/postgres"
    publish(path, Published(url, "embedded PostgreSQL 16", disposable=True))
    assert read_published(path, timeout=0) == Published(url, "embedded PostgreSQL 16", True)
    assert path.stat().st_mode & 0o077 == 0  # the URL may carry a password
    assert [p.name for p in tmp_path.iterdir()] == ["server.json"]  # no temporary left


def test_a_failed_start_is_handed_over_as_its_message(tmp_path: Path) -> None:
    path = tmp_path / "server.json"
    publish(path, None, error="embedded provider: initdb failed")
    with pytest.raises(PostgresProviderError, match=r"^embedded provider: initdb failed$"):
        read_published(path, timeout=0)


def test_a_reader_waits_for_the_server_to_be_published(tmp_path: Path) -> None:
    path = tmp_path / "server.json"
    later = threading.Timer(
        0.2, publish, (path, Published("postgresql://x@/postgres", "url", disposable=False))
    )
    later.start()
    try:
        assert read_published(path, timeout=30).admin_url == "postgresql://x@/postgres"
    finally:
        later.join()


def test_create_database_on_dead_server_fails_fast() -> None:
    began = time.monotonic()
    with pytest.raises(PostgresProviderError, match="could not create database"):
        create_database(f"postgresql://crm@127.0.0.1:{_free_port()}/crm", "crm_x", timeout=3)
    assert time.monotonic() - began < 5


def test_auto_order_prefers_docker_when_an_engine_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = PostgresServer("docker", "postgresql://u@h/db", "docker image fake")
    calls: list[str] = []

    def fake_start_docker(image: str, timeout: float) -> PostgresServer:
        calls.append(image)
        return fake

    monkeypatch.setattr(docker_provider, "docker_available", lambda timeout=3.0: True)
    monkeypatch.setattr(docker_provider, "start_docker", fake_start_docker)
    monkeypatch.setenv(provider.IMAGE_ENV, "example/pg:1")
    assert start_server() is fake
    assert calls == ["example/pg:1"]
    assert start_server(image="other/pg:2") is fake
    assert calls[-1] == "other/pg:2"


def test_forced_docker_without_engine_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/nonexistent.sock")
    began = time.monotonic()
    assert not docker_available()
    with pytest.raises(PostgresProviderError) as info:
        start_server("docker", image="postgres:16", timeout=10)
    assert time.monotonic() - began < 8
    assert str(info.value).startswith("docker provider:")
    assert "no Docker engine" in str(info.value)


# --------------------------------------------------------------------------- embedded


@pytest.mark.postgres
def test_embedded_start_connect_stop() -> None:
    began = time.monotonic()
    server = start_server("embedded", timeout=60)
    started = time.monotonic() - began
    try:
        assert server.provider == "embedded"
        assert server.description.startswith("embedded PostgreSQL ")
        assert server.description.endswith("(unix socket)")
        assert started < 30
        base = Path(server.resource)
        assert (base / "owner.pid").read_text().split()[0] == str(os.getpid())
        postmaster = int((base / "data" / "postmaster.pid").read_text().split()[0])
        with psycopg.connect(server.admin_url, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
    assert not base.exists()
    assert not _alive(postmaster)
    began = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.admin_url, connect_timeout=2)
    with pytest.raises(PostgresProviderError, match="could not create database"):
        create_database(server.admin_url, "crm_gone", timeout=2)
    assert time.monotonic() - began < 3
    server.stop()  # idempotent


def test_the_embedded_server_lives_in_ram_where_there_is_room(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    short = Path(tempfile.mkdtemp(prefix="crt-", dir="/tmp"))  # room for a socket path
    try:
        ram, tmp = short / "shm", short / "tmp"
        tmp.mkdir()
        monkeypatch.setattr(embedded_provider, "RAM_ROOT", ram)
        monkeypatch.setattr(tempfile, "tempdir", str(tmp))
        assert embedded_provider._pick_root() == tmp  # no RAM dir here
        ram.mkdir()
        assert embedded_provider._pick_root() == ram
        assert ram in embedded_provider.embedded_roots()  # crash leftovers there are found
        # A RAM dir without room for a server, e.g. Docker's 64 MB /dev/shm.
        monkeypatch.setattr(embedded_provider, "RAM_ROOT_MIN_FREE", 1 << 62)
        assert embedded_provider._pick_root() == tmp
    finally:
        shutil.rmtree(short)


@pytest.mark.postgres
def test_the_embedded_servers_wal_is_bounded(embedded: PostgresServer) -> None:
    """Its data dir may be in RAM: neither the WAL (default: up to 1 GB) nor the buffers
    (128 MB) may take more than a benchmark needs."""
    with psycopg.connect(embedded.admin_url) as conn:
        shown = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
            for name in ("wal_level", "max_wal_size", "wal_segment_size", "shared_buffers", "fsync")
        }
    assert shown == {
        "wal_level": "minimal",
        "max_wal_size": "16MB",
        "wal_segment_size": "1MB",
        "shared_buffers": "32MB",
        "fsync": "off",
    }
    if embedded_provider._roomy_ram_root(embedded_provider.RAM_ROOT):
        assert Path(embedded.resource).parent == embedded_provider.RAM_ROOT


def _own_server_dirs() -> set[Path]:
    return {
        owner.parent
        for root in embedded_provider.embedded_roots()
        for owner in root.glob(embedded_provider.EMBEDDED_DIR_PREFIX + "*/owner.pid")
        if owner.read_text().split()[:1] == [str(os.getpid())]
    }


@pytest.mark.postgres
def test_embedded_start_is_bounded_by_timeout() -> None:
    before = _own_server_dirs()
    began = time.monotonic()
    with pytest.raises(PostgresProviderError, match=r"embedded provider: .*in time"):
        start_server("embedded", timeout=0.3)
    assert time.monotonic() - began < 3
    assert _own_server_dirs() == before  # nothing left behind


@pytest.mark.postgres
def test_embedded_databases_are_isolated(embedded: PostgresServer) -> None:
    url_a = create_database(embedded.admin_url, "crm_iso_a")
    url_b = create_database(embedded.admin_url, "crm_iso_b")
    try:
        assert url_a == embedded.url_for("crm_iso_a")
        with psycopg.connect(url_a, connect_timeout=5, autocommit=True) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("crm_iso_a",)
            conn.execute("CREATE TABLE accounts (id int)")
            conn.execute("INSERT INTO accounts VALUES (1)")
        with psycopg.connect(url_b, connect_timeout=5) as conn:
            row = conn.execute("SELECT to_regclass('accounts') IS NULL").fetchone()
            assert row == (True,)
    finally:
        drop_database(embedded.admin_url, "crm_iso_a")
        drop_database(embedded.admin_url, "crm_iso_b")


@pytest.mark.postgres
def test_create_replace_and_drop(embedded: PostgresServer) -> None:
    admin = embedded.admin_url
    url = create_database(admin, "crm_replace")
    with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int)")
        with pytest.raises(PostgresProviderError, match="already exists"):
            create_database(admin, "crm_replace", replace=False)
        # replace=True drops it although this connection is still open (WITH (FORCE)).
        create_database(admin, "crm_replace")
    with psycopg.connect(url, connect_timeout=5) as conn:
        assert conn.execute("SELECT to_regclass('t') IS NULL").fetchone() == (True,)
    drop_database(admin, "crm_replace")
    drop_database(admin, "crm_replace")  # absent: no error
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(url, connect_timeout=5)


@pytest.mark.postgres
def test_url_from_env_wins_in_auto_mode(
    embedded: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(docker_provider, "docker_available", lambda timeout=3.0: True)
    monkeypatch.setenv(url_provider.URL_ENV, embedded.admin_url)
    server = start_server()
    assert server.provider == "url"
    assert server.admin_url == embedded.admin_url
    assert server.description.startswith("url postgresql://postgres@")
    server.stop()  # a url server belongs to somebody else: stop is a no-op
    with psycopg.connect(embedded.admin_url, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.postgres
def test_url_description_hides_password(embedded: PostgresServer) -> None:
    url = embedded.admin_url.replace("postgres@", "postgres:hunter2@")  # trust auth ignores it
    server = start_server("url", url=url)
    assert server.admin_url == url
    assert "hunter2" not in server.description
    assert "hunter2" not in repr(server.description)


@pytest.mark.postgres
def test_auto_without_docker_uses_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docker_provider, "docker_available", lambda timeout=3.0: False)
    server = start_server()
    try:
        assert server.provider == "embedded"
        assert any("docker" in note for note in server.notes)
    finally:
        server.stop()


@pytest.mark.postgres
def test_auto_falls_back_to_embedded_when_docker_start_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_start_docker(image: str, timeout: float) -> PostgresServer:
        raise PostgresProviderError(f"docker provider: could not pull {image}")

    monkeypatch.setattr(docker_provider, "docker_available", lambda timeout=3.0: True)
    monkeypatch.setattr(docker_provider, "start_docker", broken_start_docker)
    server = start_server(image="nowhere/pg:0")
    try:
        assert server.provider == "embedded"
        assert any("could not pull nowhere/pg:0" in note for note in server.notes)
    finally:
        server.stop()


@pytest.mark.postgres
def test_crash_leftovers_are_cleaned_on_next_start(tmp_path: Path) -> None:
    package_root = Path(provider.__file__).resolve().parents[2]
    code = textwrap.dedent(
        """
        import time
        from pytest_crmbench.postgres.provider import start_server
        server = start_server("embedded", timeout=60)
        print(server.resource, flush=True)
        time.sleep(120)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package_root), *sys.path])}
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    base: Path | None = None
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 60)
        assert ready, "the child did not start an embedded server in time"
        line = child.stdout.readline().strip()
        assert line, f"the child exited with {child.wait(5)}"
        base = Path(line)
        postmaster = int((base / "data" / "postmaster.pid").read_text().split()[0])
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        assert base.exists()
        assert _alive(postmaster), "the orphaned postmaster should outlive its owner"

        server = start_server("embedded", timeout=60)
        server.stop()
        assert not base.exists()
        deadline = time.monotonic() + 5
        while _alive(postmaster) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(postmaster)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
        cleanup_orphans()


@pytest.mark.postgres
def test_cleanup_leaves_live_owners_alone(embedded: PostgresServer) -> None:
    removed = cleanup_orphans()
    assert Path(embedded.resource) not in removed
    assert Path(embedded.resource).exists()


# --------------------------------------------------------------------------- docker


@pytest.fixture(scope="module")
def docker_image() -> str:
    image = os.environ.get(DOCKER_IMAGE_ENV)
    if not image:
        pytest.skip(f"{DOCKER_IMAGE_ENV} is not set (name of a locally available Postgres image)")
    if not docker_available():
        pytest.skip("no Docker engine answers")
    return image


@pytest.mark.docker
@pytest.mark.postgres
def test_docker_start_connect_stop(docker_image: str) -> None:
    import docker

    server = start_server("docker", image=docker_image, timeout=60)
    try:
        assert server.provider == "docker"
        assert server.description.startswith(f"docker image {docker_image}")
        password = psycopg.conninfo.conninfo_to_dict(server.admin_url).get("password")
        assert password
        assert str(password) not in server.description
        url = create_database(server.admin_url, "crm_docker")
        with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("crm_docker",)
            conn.execute("CREATE TABLE t (name text)")
            conn.execute("INSERT INTO t VALUES (%s)", ("Zoë",))
            assert conn.execute("SELECT name FROM t").fetchone() == ("Zoë",)
        drop_database(server.admin_url, "crm_docker")
    finally:
        server.stop()
    client = docker.from_env(timeout=10)
    try:
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(server.resource)
    finally:
        client.close()
    server.stop()  # idempotent


def test_a_server_dir_is_out_of_the_way_at_once_and_deleted_in_the_background(
    tmp_path: Path,
) -> None:
    base = tmp_path / (embedded_provider.EMBEDDED_DIR_PREFIX + "discard")
    (base / "data" / "base").mkdir(parents=True)
    for n in range(500):
        (base / "data" / "base" / str(n)).write_bytes(b"x" * 8192)
    embedded_provider._discard(base)
    assert not base.exists()  # the next run and its orphan scan see nothing of it
    deadline = time.monotonic() + 60
    while any(tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(tmp_path.iterdir())


def test_the_orphan_scan_finishes_an_old_abandoned_delete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded_provider, "embedded_roots", lambda: [tmp_path])
    old, fresh = tmp_path / "crmbench-trash-old", tmp_path / "crmbench-trash-fresh"
    for path in (old, fresh):
        (path / "data").mkdir(parents=True)
        (path / "data" / "PG_VERSION").write_text("18\n")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    assert cleanup_orphans() == [old]
    assert not old.exists() and fresh.exists()  # a delete under way is left to its rm
