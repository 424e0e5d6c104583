"""The seed world: the project's own records that every conversation starts from."""

from __future__ import annotations

import json
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from pytest_crmbench.crm.entities import BY_TABLE, LOAD_ORDER, Entity, Record
from pytest_crmbench.crm.store import Store
from pytest_crmbench.locations import data_file


def record_from_json(entity: Entity, raw: dict[str, Any]) -> Record:
    """Convert a JSON record to store values (dates, timestamps, floats), all fields present."""
    record: Record = {}
    for f in entity.fields:
        value = raw.get(f.name)
        if value is not None:
            if f.kind in ("date", "close_date"):
                value = date.fromisoformat(value)
            elif f.kind == "timestamp":
                value = datetime.fromisoformat(value)
            elif f.kind in ("amount", "value"):
                value = float(value)
            elif f.kind == "probability":
                value = int(value)
            elif f.kind in ("id", "ref", "entity_ref"):
                value = str(value).lower()
            elif f.kind == "id_list":
                value = [str(x).lower() for x in value]
        record[f.name] = value
    unknown = set(raw) - set(entity.field_names)
    if unknown:
        raise ValueError(f"{entity.name} record has unknown fields: {sorted(unknown)}")
    return record


class SeedWorld:
    """Parsed seed records per table, in creation order."""

    def __init__(self, tables: dict[str, list[Record]], reference_date: date) -> None:
        self.tables = tables
        self.reference_date = reference_date

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SeedWorld:
        tables = {
            t: [record_from_json(BY_TABLE[t], r) for r in data.get(t, [])] for t in LOAD_ORDER
        }
        return cls(tables, date.fromisoformat(data["reference_date"]))

    def load_into(self, store: Store) -> None:
        """Insert every record (no validation: the seed is checked by the project's tests)."""
        store.insert_many({t: [dict(r) for r in self.tables[t]] for t in LOAD_ORDER})

    def counts(self) -> dict[str, int]:
        return {t: len(rows) for t, rows in self.tables.items()}


@lru_cache(maxsize=4)
def load_seed_world(path: str | None = None) -> SeedWorld:
    """The shipped seed world (``data/seed_world.json``) or another file in that format."""
    file = Path(path) if path else data_file("seed_world.json")
    with file.open(encoding="utf-8") as fh:
        return SeedWorld.from_json(json.load(fh))
