"""A located problem in a dataset file, shared by the loader, the Arc importer and lint."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One problem, located as precisely as is known."""

    file: str
    line: int | None
    message: str
    conv_id: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.conv_id:
            where += f" ({self.conv_id})"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )
