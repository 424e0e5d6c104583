"""Arguments in the catalog's shape: what a tool accepts, and how looser shapes map onto it.

Upstream datasets put modify fields flat or under ``updates`` and search criteria flat
or under ``criteria``; the importer and ``crmbench lint`` both need the one canonical
form and the names a tool does not define.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_crmbench.crm.catalog import ToolSpec


def accepted_arguments(spec: ToolSpec) -> tuple[str, ...]:
    """The argument names a tool accepts: its parameters, plus for modify tools the
    modifiable fields (flat or under ``updates``), for searches the search fields."""
    if spec.extra == "updates":
        assert spec.entity is not None
        return (spec.entity.key, *(f.name for f in spec.entity.fields if f.modifiable))
    if spec.extra == "criteria":
        return tuple(sf.name for sf in spec.search)
    return spec.param_names


def unknown_argument_message(spec: ToolSpec, name: str) -> str:
    return f"{spec.name} has no argument {name!r} (it takes: {', '.join(accepted_arguments(spec))})"


def canonical_args(spec: ToolSpec, args: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``args`` in the catalog's shape — modify tools: the key plus ``updates``; searches:
    the criteria as plain arguments — and the names of the arguments the tool does not
    define (left out)."""
    unknown: list[str] = []
    out: dict[str, Any]
    if spec.extra in ("updates", "criteria"):
        nested_key = spec.extra
        nested = args.get(nested_key)
        merged = dict(nested) if isinstance(nested, Mapping) else {}
        if nested is not None and not isinstance(nested, Mapping):
            unknown.append(f"{nested_key} (not an object)")
        key = spec.entity.key if spec.extra == "updates" and spec.entity is not None else None
        merged.update({k: x for k, x in args.items() if k not in (key, nested_key)})
        accepted = set(accepted_arguments(spec)) - {key}
        kept = {k: x for k, x in merged.items() if k in accepted}
        unknown += [k for k in merged if k not in accepted]
        if key is None:
            out = kept
        else:
            out = {key: args[key]} if key in args else {}
            if kept:
                out["updates"] = kept
    else:
        out = {k: x for k, x in args.items() if k in spec.param_names}
        unknown = [k for k in args if k not in spec.param_names]
    return out, unknown
