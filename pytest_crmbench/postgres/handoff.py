"""A server started in one process, handed to others through a file.

An xdist run starts its PostgreSQL server in the controller. Started before the workers
are spawned, it held them back by the 1-3 s a server takes to come up; started in the
background, the workers boot meanwhile, but they were told where the server is at spawn
time, before it existed. So the controller writes where it is, or why there is none, to a
file named at spawn time, and a worker reads that file when it first needs the server.

The file is written once, atomically (renamed into place), readable by its owner only (an
admin URL may carry a password). This module knows nothing of pytest.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pytest_crmbench.postgres.server import PostgresProviderError

__all__ = ["Published", "publish", "read_published"]

POLL_S = 0.02


@dataclass(frozen=True)
class Published:
    """Where the run's server is: what a worker needs to create its database."""

    admin_url: str
    description: str
    disposable: bool  # the run started it and discards it whole (no DROP DATABASE needed)


def publish(path: Path, server: Published | None, error: str | None = None) -> None:
    """Write ``server`` (or ``error``: why there is none) to ``path`` in one step."""
    payload = {"error": error} if server is None else asdict(server)
    fd, tmp = tempfile.mkstemp(prefix=".handoff-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(payload, out)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_published(path: Path, timeout: float) -> Published:
    """The server published at ``path``, waiting up to ``timeout`` s for it to appear.

    Raises :class:`PostgresProviderError` with the starting side's message if it could
    not start one, or if nothing was published in time.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            break
        except FileNotFoundError:
            if time.monotonic() >= deadline:
                raise PostgresProviderError(
                    f"no PostgreSQL server was handed over within {timeout:g} s "
                    "(the process starting it did not finish); see its output"
                ) from None
            time.sleep(POLL_S)
    if payload.get("error") is not None or "admin_url" not in payload:
        raise PostgresProviderError(str(payload.get("error") or "no server was started"))
    return Published(
        admin_url=str(payload["admin_url"]),
        description=str(payload.get("description") or ""),
        disposable=bool(payload.get("disposable")),
    )
