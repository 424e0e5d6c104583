"""The ``url`` provider: an existing server named by a URL, never started nor stopped here.

CI services and developer databases come in this way.
"""

from __future__ import annotations

from pytest_crmbench.postgres.server import (
    PostgresProviderError,
    PostgresServer,
    normalize_url,
    redact_url,
    server_version,
)

__all__ = ["URL_ENV", "start_url"]

URL_ENV = "CRMBENCH_POSTGRES_URL"


def start_url(url: str, timeout: float) -> PostgresServer:
    """Check that the given server answers; it is never started nor stopped here."""
    # lazy: psycopg is heavy; importing this package stays cheap
    import psycopg

    url = normalize_url(url)
    try:
        version = server_version(url, min(timeout, 10.0))
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
