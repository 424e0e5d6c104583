"""``crmbench merge``: the reports of N shards of one run as the report of the whole run.

The summary is recomputed from the item records, so it equals what the unsharded run
would have written. Shards of different runs, and overlapping or missing shards, are
refused with what differs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_crmbench.results.packing import PACKING_KEY, pack_report, report_items
from pytest_crmbench.results.stream import RUN_IDENTITY
from pytest_crmbench.results.summary import summarize


class MergeError(ValueError):
    """The reports are not the shards of one run."""


def load_report(path: str | Path) -> dict[str, Any]:
    """A crmbench JSON report; :class:`MergeError` (a ValueError) when it is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MergeError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MergeError(f"{path}: not a JSON report ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("crmbench"), dict):
        raise MergeError(f"{path}: not a report of a crmbench run (no 'crmbench' section)")
    return data


def run_identity(report: dict[str, Any]) -> dict[str, Any]:
    """Agent, model, dataset and verdict settings of a report's run."""
    crm = report["crmbench"]
    settings = crm.get("settings") or {}
    agent = crm.get("agent") or {}
    return {
        **{f"settings.{k}": settings.get(k) for k in RUN_IDENTITY},
        "agent.name": agent.get("name"),
        "agent.model": agent.get("model"),
        "dataset.sha256": (crm.get("dataset") or {}).get("sha256"),
    }


def _shard(report: dict[str, Any], path: str) -> tuple[int, int] | None:
    text = report["crmbench"].get("shard")
    if not text:
        return None
    k, _, n = str(text).partition("/")
    if not (k.isdigit() and n.isdigit()):
        raise MergeError(f"{path}: shard {text!r} is not K/N")
    return int(k), int(n)


def merge_reports(reports: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """One report of the run the shards ``reports`` (read from ``names``) are parts of."""
    if not reports:
        raise MergeError("no reports to merge")
    first = run_identity(reports[0])
    for report, name in zip(reports[1:], names[1:], strict=True):
        other = run_identity(report)
        diffs = [f"{k} {first[k]!r} vs {other[k]!r}" for k in first if first[k] != other[k]]
        if diffs:
            raise MergeError(
                f"{name} is a shard of another run than {names[0]} ({'; '.join(diffs)})"
            )
    shards = [_shard(r, n) for r, n in zip(reports, names, strict=True)]
    if any(s is not None for s in shards):
        if any(s is None for s in shards):
            plain = [n for n, s in zip(names, shards, strict=True) if s is None]
            raise MergeError(f"{', '.join(plain)}: not a shard (no --crm-shard K/N recorded)")
        totals = {s[1] for s in shards if s}
        if len(totals) > 1:
            raise MergeError(f"the shards split the run differently (N = {sorted(totals)})")
        total = totals.pop()
        seen: dict[int, str] = {}
        for s, name in zip(shards, names, strict=True):
            assert s is not None
            if s[0] in seen:
                raise MergeError(f"shard {s[0]}/{total} given twice: {seen[s[0]]} and {name}")
            seen[s[0]] = name
        missing = [f"{k}/{total}" for k in range(1, total + 1) if k not in seen]
        if missing:
            raise MergeError(f"missing shard(s) {', '.join(missing)} of {total}")
    tests: list[dict[str, Any]] = []
    owner: dict[str, str] = {}
    items = []
    for report, name in zip(reports, names, strict=True):
        records = iter(report_items(report))
        for test in report.get("tests") or []:
            nodeid = test.get("nodeid")
            if nodeid in owner:
                raise MergeError(f"{nodeid} is in both {owner[nodeid]} and {name}")
            owner[nodeid] = name
            test = dict(test)
            if isinstance((test.get("metadata") or {}).get("crmbench"), dict):
                item = next(records)
                items.append(item)
                test["metadata"] = {**test["metadata"], "crmbench": dict(item)}
            tests.append(test)
    crms = [r["crmbench"] for r in reports]
    merged_crm = {k: v for k, v in crms[0].items() if k != PACKING_KEY}
    merged_crm.update(
        summary=summarize(items),
        started=min(str(c.get("started") or "") for c in crms),
        finished=max(str(c.get("finished") or "") for c in crms),
        stopped="; ".join(str(c["stopped"]) for c in crms if c.get("stopped")) or None,
        resumed_items=sum(int(c.get("resumed_items") or 0) for c in crms),
        shard=None,
        merged_from=[
            {"file": n, "shard": c.get("shard"), "run_id": c.get("run_id")}
            for n, c in zip(names, crms, strict=True)
        ],
        gate=None,  # a gate judged one shard; judge the merged run anew
    )
    merged_crm["oracle"] = bool(merged_crm["summary"].get("oracle"))
    head = reports[0]
    out: dict[str, Any] = {k: v for k, v in head.items() if k not in ("tests", "crmbench")}
    out["exitcode"] = max(int(r.get("exitcode") or 0) for r in reports)
    out["duration"] = sum(float(r.get("duration") or 0) for r in reports)
    out["tests"] = sorted(tests, key=lambda t: str(t.get("nodeid")))
    out["summary"] = _pytest_summary(out["tests"])
    out["crmbench"] = merged_crm
    pack_report(out)
    return out


def _pytest_summary(tests: Sequence[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in tests:
        counts[str(t.get("outcome"))] = counts.get(str(t.get("outcome")), 0) + 1
    return {**counts, "total": len(tests), "collected": len(tests)}
