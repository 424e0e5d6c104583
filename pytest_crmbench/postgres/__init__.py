"""PostgreSQL servers for the benchmark: from a URL, a Docker container or the embedded wheel."""

from pytest_crmbench.postgres.provider import (
    DEFAULT_IMAGE,
    IMAGE_ENV,
    MODES,
    URL_ENV,
    PostgresProviderError,
    PostgresServer,
    cleanup_orphans,
    create_database,
    docker_available,
    drop_database,
    redact_url,
    start_server,
    with_database,
)

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
