"""pytest entry point (``pytest11``) of pytest-crmbench.

Registers the project's markers. The benchmark items, options and reporting hooks are
added by the plugin work (see the README); this module stays importable and inert for
plain test runs.
"""

from __future__ import annotations

import pytest

MARKERS = (
    "conformance: CRM rule/message/cascade/search cases run against every store",
    "differential: hypothesis differential test of the memory and PostgreSQL stores",
    "docker: needs a Docker engine (testcontainers); skipped when none answers",
    "postgres: needs a PostgreSQL server (embedded, Docker or URL)",
)


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
