"""Where the shipped data lives: the seed world, the task frequencies and the datasets.

One lookup for all of them. A checkout (editable install) has ``data/``, ``cases/`` and
``golden/`` beside the package; a wheel installs them under
``<prefix>/share/pytest-crmbench``; ``CRMBENCH_HOME`` overrides both. (Files inside the
package, such as the PostgreSQL schema, are read with :mod:`importlib.resources`.)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SHARE = ("share", "pytest-crmbench")


def project_dir(name: str) -> Path:
    """One of the project's top-level data folders (``data``, ``cases``, ``golden``)."""
    candidates = []
    if os.environ.get("CRMBENCH_HOME"):
        candidates.append(Path(os.environ["CRMBENCH_HOME"]) / name)
    candidates.append(Path(__file__).resolve().parents[1] / name)
    candidates.append(Path(sys.prefix).joinpath(*SHARE, name))
    for path in candidates:
        if path.is_dir():
            return path
    raise FileNotFoundError(
        f"cannot find the project's '{name}' folder (looked in: "
        + ", ".join(str(c) for c in candidates)
        + "); set CRMBENCH_HOME to the project checkout"
    )


def data_file(name: str) -> Path:
    """A file of ``data/`` (``seed_world.json``, ``task_frequencies.json``)."""
    return project_dir("data") / name


def shipped_conversations() -> Path:
    """The shipped conversation dataset (all 1,200 conversations)."""
    return project_dir("cases") / "conversations.jsonl"


def shipped_golden() -> Path:
    """The folder of the shipped golden cases."""
    return project_dir("golden")
