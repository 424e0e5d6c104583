"""How a turn is judged, without pytest or agents.

* state: the agent's net change equals the reference's — generated ids matched by
  content, CRM timestamps ignored, numbers numerically, dates as dates, free text
  case- and whitespace-insensitively;
* refusal: for turns the CRM must refuse, nothing changed and the reply says so (a
  failure reported, no change claimed: :mod:`pytest_crmbench.runner.refusal`);
* reply: every required fact appears (number and date formats normalised);
* action (diagnostic): the expected tools were called with matching arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from pytest_crmbench.crm.entities import BY_TABLE, LOAD_ORDER, Entity, Record
from pytest_crmbench.dataset.facts import norm_text
from pytest_crmbench.runner import refusal
from pytest_crmbench.runner.tracking import Change

IdMap = dict[str, str]  # agent-side id -> reference-side id


class Finding(str):
    """A failure reason (shown in reports); ``student`` says what failed — the check,
    the record, the fields — without any expected value (feedback in student mode)."""

    student: str

    def __new__(cls, message: str, student: str | None = None) -> Finding:
        obj = super().__new__(cls, message)
        obj.student = message if student is None else student
        return obj


_TEXT_KINDS = frozenset({"text", "email", "url", "file_name"})


def _norm_value(kind: str, value: Any, idmap: Mapping[str, str]) -> Any:
    if value is None:
        return None
    if kind in _TEXT_KINDS and isinstance(value, str):
        return norm_text(value)
    if kind in ("ref", "entity_ref", "id"):
        return idmap.get(str(value), str(value))
    if kind in ("amount", "value", "probability"):
        return float(value)
    if kind in ("date", "close_date"):
        return value.isoformat() if isinstance(value, date) else str(value)
    if kind == "id_list":
        return [idmap.get(x, x) for x in value]
    return value


def comparable(entity: Entity, record: Record, idmap: Mapping[str, str]) -> dict[str, Any]:
    """The fields that matter for the verdict, normalised; own id and timestamps dropped."""
    return {
        f.name: _norm_value(f.kind, record.get(f.name), idmap)
        for f in entity.fields
        if f.kind not in ("id", "timestamp")
    }


def describe(entity: Entity, record: Record | None) -> str:
    """A short human label for a record in failure messages."""
    if record is None:
        return entity.name
    for field in ("name", "file_name", "content"):
        if record.get(field):
            return f"{entity.name} '{str(record[field])[:60]}'"
    if record.get("first_name"):
        return f"{entity.name} '{record['first_name']} {record.get('last_name') or ''}'".rstrip()
    return f"{entity.name} {str(record[entity.key])[:8]}"


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


def _field_diffs(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    return [
        f"{name}: {_fmt(actual.get(name))} ≠ {_fmt(expected.get(name))}"
        for name in expected
        if expected.get(name) != actual.get(name)
    ]


def _names(diffs: Sequence[str]) -> list[str]:
    """The field names of ``_field_diffs`` lines (``amount: 1 ≠ 2`` → ``amount``)."""
    return [d.partition(":")[0] for d in diffs]


def _touched(entity: Entity, change: Change, idmap: Mapping[str, str]) -> set[str]:
    """The fields a modification changed (compared normalised)."""
    before = comparable(entity, change.before or {}, idmap)
    after = comparable(entity, change.after or {}, idmap)
    return {name for name in after if before.get(name) != after.get(name)}


def compare_changes(
    expected: Sequence[Change], actual: Sequence[Change], idmap: IdMap
) -> list[Finding]:
    """Differences between the reference's and the agent's changes (empty = state passes).

    ``idmap`` (agent id → reference id) is extended with the records both sides created,
    so later turns can refer to them.
    """
    problems: list[Finding] = []
    exp_by_key = {(c.table, c.key): c for c in expected}
    for table in LOAD_ORDER:
        entity = BY_TABLE[table]
        exp_new = [c for c in expected if c.table == table and c.kind == "created"]
        act_new = [c for c in actual if c.table == table and c.kind == "created"]
        # 1. created records: match by content, in order.
        pending = list(exp_new)
        unmatched: list[Change] = []
        for act in act_new:
            assert act.after is not None
            act_cmp = comparable(entity, act.after, idmap)
            hit = next(
                (e for e in pending if comparable(entity, e.after or {}, idmap) == act_cmp), None
            )
            if hit is None:
                unmatched.append(act)
            else:
                pending.remove(hit)
                idmap[act.key] = hit.key
        for exp, act in zip(pending, unmatched, strict=False):
            assert exp.after is not None and act.after is not None
            diffs = _field_diffs(
                comparable(entity, exp.after, idmap), comparable(entity, act.after, idmap)
            )
            problems.append(
                Finding(
                    f"created {describe(entity, exp.after)} differs: " + "; ".join(diffs),
                    f"created {entity.name} differs in: " + ", ".join(_names(diffs)),
                )
            )
            idmap[act.key] = exp.key
        for exp in pending[len(unmatched) :]:
            problems.append(
                Finding(
                    f"missing write: {describe(entity, exp.after)} was not created",
                    f"missing write: a {entity.name} was not created",
                )
            )
        for act in unmatched[len(pending) :]:
            problems.append(Finding(f"unexpected write: created {describe(entity, act.after)}"))
        # 2. modified / deleted records: by (mapped) key.
        seen: set[str] = set()
        for act in actual:
            if act.table != table or act.kind == "created":
                continue
            ref_key = idmap.get(act.key, act.key)
            seen.add(ref_key)
            exp_change = exp_by_key.get((table, ref_key))
            label = describe(entity, act.before)
            if exp_change is None:
                problems.append(Finding(f"unexpected write: {act.kind} {label}"))
            elif exp_change.kind != act.kind:
                problems.append(
                    Finding(
                        f"{label}: {act.kind}, expected {exp_change.kind}",
                        f"{label}: {act.kind}, which is not the change asked for",
                    )
                )
            elif act.kind == "modified":
                assert act.after is not None and exp_change.after is not None
                # Judge the change, not the whole record: a field neither side touched now
                # (say, an amount an earlier turn got wrong) is not this turn's failure.
                touched = _touched(entity, exp_change, idmap) | _touched(entity, act, idmap)
                diffs = _field_diffs(
                    {
                        k: v
                        for k, v in comparable(entity, exp_change.after, idmap).items()
                        if k in touched
                    },
                    comparable(entity, act.after, idmap),
                )
                if diffs:
                    problems.append(
                        Finding(
                            f"{label} modified wrongly: " + "; ".join(diffs),
                            f"{label} modified wrongly in: " + ", ".join(_names(diffs)),
                        )
                    )
        for exp in expected:
            if exp.table == table and exp.kind != "created" and exp.key not in seen:
                verb = "deleted" if exp.kind == "deleted" else "modified"
                problems.append(
                    Finding(f"missing write: {describe(entity, exp.before)} was not {verb}")
                )
    return problems


# == refusal =====================================================================
def says_refused(reply: str) -> bool:
    """Whether the reply tells the user the request was not carried out.

    True only if it reports a failure and claims no change; see
    :mod:`pytest_crmbench.runner.refusal` for the rule.
    """
    return refusal.says_refused(reply)


# == action match ==================================================================
def _norm_arg(value: Any, idmap: Mapping[str, str]) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        mapped = idmap.get(value.lower())
        return mapped if mapped is not None else norm_text(value)
    if isinstance(value, Mapping):
        return {str(k): _norm_arg(x, idmap) for k, x in value.items() if x is not None}
    if isinstance(value, list):
        return [_norm_arg(x, idmap) for x in value]
    return value


def _flat_args(tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
    flat = {k: x for k, x in args.items() if k not in ("criteria", "updates")}
    for nested in ("criteria", "updates"):
        if isinstance(args.get(nested), Mapping):
            flat.update(args[nested])
    return flat


def action_matches(
    expected: Sequence[Mapping[str, Any]], actual: Sequence[Mapping[str, Any]], idmap: IdMap
) -> list[bool]:
    """For each expected ``{tool, args}``, whether the agent made an equivalent call."""
    normalised = [
        (c["tool"], _norm_arg(_flat_args(c["tool"], c.get("args") or {}), idmap))
        for c in actual
        if isinstance(c.get("args") or {}, Mapping)  # arguments not an object match nothing
    ]
    out = []
    for call in expected:
        want = (call["tool"], _norm_arg(_flat_args(call["tool"], call.get("args") or {}), {}))
        out.append(want in normalised)
    return out
