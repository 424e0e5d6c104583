"""PostgreSQL servers for the benchmark: from a URL, a Docker container or the embedded wheel."""

from pytest_crmbench.postgres.docker_provider import docker_available
from pytest_crmbench.postgres.embedded_provider import cleanup_orphans
from pytest_crmbench.postgres.provider import DEFAULT_IMAGE, IMAGE_ENV, MODES, start_server
from pytest_crmbench.postgres.server import (
    PostgresProviderError,
    PostgresServer,
    create_database,
    drop_database,
    redact_url,
    with_database,
)
from pytest_crmbench.postgres.url_provider import URL_ENV

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
