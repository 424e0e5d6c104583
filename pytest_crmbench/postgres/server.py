"""The plumbing every PostgreSQL provider shares, so the providers need not import each other.

:class:`PostgresServer` (what a provider hands back), :class:`PostgresProviderError`,
URL helpers, bounded connections and waits, and :func:`create_database` /
:func:`drop_database` for the per-test databases on any provided server. Every
connection attempt carries ``connect_timeout`` and every wait has a deadline, so a
missing or dead server turns into a :class:`PostgresProviderError` instead of a hang.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "PostgresProviderError",
    "PostgresServer",
    "create_database",
    "drop_database",
    "normalize_url",
    "redact_url",
    "server_version",
    "wait_connectable",
    "with_database",
]

_log = logging.getLogger(__name__)

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


def normalize_url(url: str, provider: str = "url") -> str:
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
    # lazy: psycopg is heavy; importing this package stays cheap
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


def server_version(url: str, timeout: float) -> str:
    with _connect(url, timeout) as conn:
        version = conn.info.parameter_status("server_version") or "?"
    return version.split()[0]


def wait_connectable(url: str, deadline: float, provider: str) -> str:
    """Poll until the server accepts a connection; returns its version."""
    # lazy: psycopg is heavy; importing this package stays cheap
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
            return server_version(url, min(remaining, 5.0))
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
    # lazy: psycopg is heavy; importing this package stays cheap
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
    # lazy: psycopg is heavy; importing this package stays cheap
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
    # lazy: psycopg is heavy; importing this package stays cheap
    from psycopg import sql

    # WITH (FORCE) exists since PostgreSQL 13; older servers just get a plain DROP.
    force = " WITH (FORCE)" if conn.info.server_version >= 130000 else ""
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}" + force).format(ident))
