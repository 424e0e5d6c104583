"""The ``docker`` provider: a throw-away PostgreSQL container started through testcontainers.

The only module that talks to Docker: probing for an engine (:func:`docker_available`)
and running a container whose readiness wait is bounded by the caller's timeout.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import secrets
import socket
import threading
import time
from typing import Any
from urllib.parse import quote

from pytest_crmbench.postgres.server import (
    PostgresProviderError,
    PostgresServer,
    wait_connectable,
)

__all__ = ["docker_available", "start_docker"]

_log = logging.getLogger(__name__)


def docker_available(timeout: float = 3.0) -> bool:
    """True when a Docker engine answers a ping within ``timeout`` seconds.

    The engine is looked up the way testcontainers does (``DOCKER_HOST``, the
    testcontainers properties file, the current docker context). The ping runs in a
    daemon thread so that even a misbehaving endpoint cannot block the caller.
    """
    try:
        # lazy: heavy, and a missing install just means no Docker
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


def start_docker(image: str, timeout: float) -> PostgresServer:
    """A fresh container of ``image`` via testcontainers, readiness bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    if not docker_available(timeout=min(3.0, timeout)):
        raise PostgresProviderError(
            f"docker provider: no Docker engine answered at {_docker_host_hint()}; start "
            "Docker or set DOCKER_HOST, or use the 'embedded' or 'url' provider"
        )
    try:
        # lazy: heavy; only loaded when a container is started
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
            self.crmbench_version = wait_connectable(_container_url(self), deadline, "docker")

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
