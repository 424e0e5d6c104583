"""Import the upstream (Arc) conversation format into the project's :class:`Conversation`.

One upstream line (``conversation_id``, ``turns[].user_utterance`` / ``expected_tool`` /
``expected_args``, ``initial_entities.seed_data``) becomes one conversation:

* **World.** The upstream ran every conversation on an empty database plus its own
  ``seed_data``, so imported conversations do too: they are tagged :data:`ARC_TAG` and
  the plugin runs them on a store whose base is :func:`empty_world` (no seed-world
  records under them — those would change what searches return and which record a
  "first result" reference picks). :class:`pytest_crmbench.runner.arc.ArcRunner` routes them there.
* **Seed.** ``{EntityType: {uuid: {field: value}}}``, seeded Client, Contact, Opportunity,
  Quote, Contract, Document (then Company, Note). Partial records get defaults: client
  status Active, opportunity stage Qualification, quote status Draft, contract status
  Active, timestamps the reference date (09:00 UTC), any other missing field null.
  Every record is checked with the CRM's own field rules and foreign keys; a record the
  CRM would not hold is an ``invalid-seed`` defect (and is left out).
* **Reference date.** The upstream has none. :data:`ARC_REFERENCE_DATE` (2025-01-01), or
  the latest seeded timestamp (``created_date``, ``created_at``, ``uploaded_at``) when
  that is later, so no record was created "in the future". Business dates (close dates,
  validity, contract periods) may lie on either side of it, as in a real CRM.
* **Calls.** ``expected_tool``/``expected_args`` → one expected call. Arguments are put
  in the catalog's shape (modify tools: fields under ``updates``; searches: criteria as
  plain arguments); ``{{turn_N.field}}`` references are kept (the project's syntax is the
  same, and a list result stands for its first element in both).
* **Utterances.** ``{{turn_N.field}}`` in what the user says is rendered from the
  reference run (a real user would have said the value). Records created during the
  conversation get the ids the agent run's id factory gives them when the calls are
  made in the reference order (``DeterministicIds(conversation id)``), so the id the
  user quotes is the one the agent created — the reference run's own ids are private
  to the verdict. (An agent that created other records first has already failed an
  earlier turn; after a ``--crm-recover`` repair the record carries the reference id,
  so a later quoted id no longer matches.) Any other placeholder is a defect.
* **Replies.** Facts to mention are derived from the reference *result* (names, ids or
  counts of the returned records), never from the upstream's reply text (which embeds
  generation-time ids and timestamps).
* **Complexity** is recomputed from the turn count (the model's rule, 1–3 / 4–6 / 7–10);
  the upstream value is kept in ``tags`` (``arc-complexity:medium``) and a mismatch is a
  non-blocking ``complexity-mismatch`` finding. **Workflow**: the upstream category when
  it names one of the 8 workflows, otherwise (``General``…) derived from the tools used.

Defects (:mod:`pytest_crmbench.dataset.defects`) never stop the import: the conversation
is still produced (as an unvalidated stub when the model cannot hold it), and the plugin
skips or xfails it with the defect named. Only lines that are not Arc conversations at
all (invalid JSON; no ``conversation_id``, ``turns``, or a turn without
``user_utterance``/``expected_tool``) are collection errors, named by file and line.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pytest_crmbench.crm import validation as v
from pytest_crmbench.crm.catalog import BY_TOOL, ToolSpec
from pytest_crmbench.crm.clock import DeterministicIds, FixedClock
from pytest_crmbench.crm.entities import BY_NAME, BY_TABLE, LOAD_ORDER, Entity
from pytest_crmbench.crm.errors import CrmError
from pytest_crmbench.crm.memory import MemoryStore
from pytest_crmbench.crm.seed import SeedWorld, record_from_json
from pytest_crmbench.crm.service import CRM
from pytest_crmbench.dataset import workflows
from pytest_crmbench.dataset.defects import Defect
from pytest_crmbench.dataset.model import (
    FORMAT,
    TURNS_BY_COMPLEXITY,
    Conversation,
    ExpectedCall,
    Reply,
    Turn,
)
from pytest_crmbench.dataset.problems import Problem
from pytest_crmbench.dataset.refs import Ref, RefError, iter_strings, lookup, parse_refs, resolve
from pytest_crmbench.dataset.stated import describe_value, unstated_values
from pytest_crmbench.dataset.tool_args import canonical_args, unknown_argument_message

ARC_TAG = "source:arc"
ARC_REFERENCE_DATE = date(2025, 1, 1)
MAX_TURNS = 10

#: Seeding order of the upstream entity types (tables follow the CRM's load order).
SEED_ORDER = (
    "Client",
    "Contact",
    "Opportunity",
    "Quote",
    "Contract",
    "Company",
    "Document",
    "Note",
)
SEED_DEFAULTS: dict[str, dict[str, Any]] = {
    "Client": {"status": "Active"},
    "Opportunity": {"stage": "Qualification"},
    "Quote": {"status": "Draft"},
    "Contract": {"status": "Active"},
}

_WORKFLOW_ALIASES = {
    **{w.casefold(): w for w in workflows.WORKFLOWS},
    "opportunities": workflows.OPPORTUNITY,
    "opportunity": workflows.OPPORTUNITY,
    "sales": workflows.OPPORTUNITY,
    "client": workflows.CLIENT,
    "clients": workflows.CLIENT,
    "contact": workflows.CONTACT,
    "contacts": workflows.CONTACT,
    "quote": workflows.QUOTE,
    "quotes": workflows.QUOTE,
    "contract": workflows.CONTRACT,
    "contracts": workflows.CONTRACT,
    "company management": workflows.COMPANY,
    "account management": workflows.COMPANY,
    "company": workflows.COMPANY,
    "document": workflows.DOCUMENT,
    "documents": workflows.DOCUMENT,
    "notes": workflows.NOTES,
    "notes management": workflows.NOTES,
    "collaboration": workflows.NOTES,
    "notes and collaboration": workflows.NOTES,
}

_PLACEHOLDER = re.compile(r"\{\{[^{}]*\}\}|\{[A-Za-z_]\w*\}")  # what the model rejects
_DOUBLE = re.compile(r"\{\{[^{}]*\}\}")
_BAD_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_STAMP_KINDS = ("timestamp",)
MAX_PROBLEMS_PER_FILE = 50
ARC_LINE = (
    "a line of the upstream Arc format, read by the Arc importer, needs conversation_id "
    "and turns[] with user_utterance and expected_tool"
)


# == results =========================================================================
@dataclass(frozen=True)
class ArcConversation:
    """One imported line: the conversation, its defects, and where it came from."""

    conversation: Conversation
    defects: tuple[Defect, ...]
    source_id: str
    line: int = 0

    @property
    def blocking(self) -> tuple[Defect, ...]:
        return tuple(d for d in self.defects if d.blocking)


@dataclass
class ArcFile:
    """What :func:`import_arc_file` found in one file."""

    conversations: list[Conversation]
    defects: dict[str, tuple[Defect, ...]]
    problems: list[Problem]
    items: list[ArcConversation]


def is_arc(conv: Any) -> bool:
    """Whether a conversation was imported from the Arc format (runs on the empty world)."""
    return ARC_TAG in (getattr(conv, "tags", None) or ())


def empty_world(reference_date: date = ARC_REFERENCE_DATE) -> SeedWorld:
    """The base world of Arc conversations: no records (each seeds its own)."""
    return SeedWorld({t: [] for t in LOAD_ORDER}, reference_date)


def complexity_for(n_turns: int) -> str:
    """The project's complexity for a turn count (more than 10 turns: complex)."""
    for name, (low, high) in TURNS_BY_COMPLEXITY.items():
        if low <= n_turns <= high:
            return name
    return "complex"


def project_id(source_id: str) -> str:
    """An upstream id in the project's id alphabet (spaces and the like become ``-``)."""
    return _BAD_ID_CHARS.sub("-", source_id).strip("-") or "arc"


def structure_problem(obj: Mapping[str, Any]) -> str | None:
    """Why a parsed line is not an Arc conversation at all (a collection error), or None."""
    cid = obj.get("conversation_id")
    if not isinstance(cid, str) or not cid.strip():
        return "conversation_id: missing or not a non-blank string"
    turns = obj.get("turns")
    if not isinstance(turns, list) or not turns:
        return "turns: missing or not a non-empty array"
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            return f"turns[{i}]: not an object"
        for key in ("user_utterance", "expected_tool"):
            if key not in turn:
                return f"turns[{i}].{key}: missing"
    return None


# == the converter ===================================================================
class _Converter:
    """Converts one upstream conversation; collects its defects."""

    def __init__(self, obj: Mapping[str, Any], conv_id: str, source_id: str) -> None:
        self.obj = obj
        self.conv_id = conv_id
        self.source_id = source_id
        self.defects: list[Defect] = []

    def add(self, kind: str, detail: str, turn: int | None = None) -> None:
        defect = Defect(kind, detail, turn)
        if defect not in self.defects:
            self.defects.append(defect)

    # -- seed ------------------------------------------------------------------------
    def raw_seed(self) -> Mapping[str, Any]:
        initial = self.obj.get("initial_entities")
        if initial is None:
            return {}
        if not isinstance(initial, Mapping):
            self.add("invalid-seed", "initial_entities is not an object")
            return {}
        seed = initial.get("seed_data")
        if seed is None:
            return {}
        if not isinstance(seed, Mapping):
            self.add("invalid-seed", "initial_entities.seed_data is not an object")
            return {}
        return seed

    def records_of(self, seed: Mapping[str, Any], name: str) -> list[tuple[str, Any]]:
        raw = seed.get(name)
        if raw is None:
            return []
        if isinstance(raw, Mapping):
            return [(str(k), v) for k, v in raw.items()]
        entity = BY_NAME[name]
        if isinstance(raw, list):  # tolerated: a list of records holding their own key
            return [(str(r.get(entity.key)) if isinstance(r, Mapping) else "?", r) for r in raw]
        self.add("invalid-seed", f"seed_data.{name} is not an object of records")
        return []

    def reference_date(self, seed: Mapping[str, Any]) -> date:
        latest = ARC_REFERENCE_DATE
        for name in SEED_ORDER:
            if name not in seed:
                continue
            stamps = [f.name for f in BY_NAME[name].fields if f.kind in _STAMP_KINDS]
            for _key, record in self.records_of(seed, name):
                if not isinstance(record, Mapping):
                    continue
                for fname in stamps:
                    value = record.get(fname)
                    if isinstance(value, str):
                        try:
                            day = datetime.fromisoformat(value).date()
                        except ValueError:
                            continue
                        latest = max(latest, day)
        return latest

    def seed(self, raw: Mapping[str, Any], today: date) -> dict[str, list[dict[str, Any]]]:
        for name in raw:
            if name not in SEED_ORDER:
                self.add(
                    "invalid-seed",
                    f"unknown entity type {name!r} (known: {', '.join(SEED_ORDER)})",
                )
        stamp = datetime.combine(today, time(9, 0), tzinfo=UTC).isoformat()
        ids: dict[str, set[str]] = {name: set() for name in SEED_ORDER}
        emails: set[str] = set()
        out: dict[str, list[dict[str, Any]]] = {}
        for name in SEED_ORDER:
            entity = BY_NAME[name]
            for key, record in self.records_of(raw, name):
                built = self.seed_record(entity, key, record, stamp, ids, emails)
                if built is not None:
                    ids[name].add(built[entity.key])
                    out.setdefault(entity.table, []).append(built)
        return out

    def seed_record(
        self,
        entity: Entity,
        key: str,
        raw: Any,
        stamp: str,
        ids: Mapping[str, set[str]],
        emails: set[str],
    ) -> dict[str, Any] | None:
        where = f"seeded {entity.name} {key}"
        if not isinstance(raw, Mapping):
            self.add("invalid-seed", f"{where}: not an object")
            return None
        canonical = v.canonical_id(key)
        if canonical is None:
            self.add("invalid-seed", f"{where}: the key is not a UUID")
            return None
        own = raw.get(entity.key)
        if own is not None and v.canonical_id(own) != canonical:
            self.add("invalid-seed", f"{where}: {entity.key} {own!r} differs from its key")
            return None
        unknown = [k for k in raw if k not in entity.field_names]
        for k in unknown:
            self.add("invalid-seed", f"{where}: unknown field {k!r}")
        record: dict[str, Any] = {entity.key: canonical}
        defaults = SEED_DEFAULTS.get(entity.name, {})
        try:
            for f in entity.fields:
                if f.kind == "id":
                    continue
                value = raw.get(f.name)
                if value is None:
                    value = defaults.get(f.name)
                record[f.name] = self.seed_value(entity, f.name, value, stamp, ids, record)
            if entity.name == "Client":
                folded = v.fold(record["email"])
                if folded in emails:
                    raise CrmError(f"email {record['email']!r} is already used by another client")
                emails.add(folded)
            if entity.name == "Contract":
                start, end = record.get("start_date"), record.get("end_date")
                if start and end and end < start:
                    raise CrmError("end_date is before start_date")
            record_from_json(entity, record)
        except CrmError as exc:
            self.add("invalid-seed", f"{where}: {exc.message}")
            return None
        except (ValueError, TypeError) as exc:
            self.add("invalid-seed", f"{where}: {exc}")
            return None
        return record

    @staticmethod
    def seed_value(
        entity: Entity,
        name: str,
        value: Any,
        stamp: str,
        ids: Mapping[str, set[str]],
        record: Mapping[str, Any],
    ) -> Any:
        """One seeded field, checked with the CRM's rules; JSON form (raises CrmError)."""
        f = entity.field(name)
        assert f is not None
        kind, label = f.kind, f.label
        if kind == "timestamp":
            if value is None:
                return stamp
            if not isinstance(value, str):
                raise CrmError(f"{label} must be an ISO timestamp")
            datetime.fromisoformat(value)  # ValueError: reported by the caller
            return value
        if kind in v.VALIDATED_KINDS:  # the CRM's own rules; no "today" rule for seeds
            checked = v.field_value(f, value, entity.name)
            return checked.isoformat() if isinstance(checked, date) else checked
        if kind in ("ref", "entity_ref"):
            target = f.ref if kind == "ref" else record.get("entity_type")
            if value is None:
                if f.required:
                    raise CrmError(f"{label} is required")
                return None
            key = v.canonical_id(value)
            if key is None:
                raise CrmError(f"{label} {value!r} is not a UUID")
            if target is None or key not in ids.get(str(target), set()):
                raise CrmError(f"{label} {value!r}: no such seeded {target or 'record'}")
            return key
        if kind == "id_list":
            if value is None:
                return []
            if not isinstance(value, list) or any(v.canonical_id(x) is None for x in value):
                raise CrmError(f"{label} must be a list of UUIDs")
            return [str(x).lower() for x in value]
        raise CrmError(f"{label}: unsupported field kind {kind}")  # pragma: no cover

    # -- calls -----------------------------------------------------------------------
    def normalise_args(self, spec: ToolSpec, args: Mapping[str, Any], turn: int) -> dict[str, Any]:
        """The catalog's shape; unknown arguments are reported and left out."""
        out, unknown = canonical_args(spec, args)
        for name in unknown:
            self.add("unknown-argument", unknown_argument_message(spec, name), turn)
        return out

    def check_arg_refs(self, args: Mapping[str, Any], turn: int, calls: Mapping[int, int]) -> bool:
        """Placeholders and references inside arguments; True when the call can run."""
        ok = True
        for loc, text in iter_strings(dict(args)):
            path = ".".join(str(p) for p in loc)
            try:
                refs = parse_refs(text)
            except RefError as exc:
                bad = _DOUBLE.search(text)
                if bad and not bad.group(0).startswith("{{turn_"):
                    self.add("placeholder", f"argument {path} = {text!r}", turn)
                else:
                    self.add("broken-reference", f"argument {path}: {exc}", turn)
                ok = False
                continue
            single = _PLACEHOLDER.search(_DOUBLE.sub("", text))
            if single:
                self.add("placeholder", f"argument {path} = {text!r}", turn)
            for ref in refs:
                problem = _ref_problem(ref, turn, calls)
                if problem:
                    self.add("broken-reference", f"argument {path}: {problem}", turn)
                    ok = False
        return ok

    # -- utterances ------------------------------------------------------------------
    def render(self, text: str, turn: int, results: Mapping[int, list[Any]]) -> str:
        """``{{turn_N.field}}`` replaced by the value; other placeholders reported."""

        def fill(m: re.Match[str]) -> str:
            token = m.group(0)
            try:
                refs = parse_refs(token)
            except RefError:
                return token
            if len(refs) != 1 or refs[0].turn >= turn:
                return token
            try:
                value = lookup(refs[0], results)
            except RefError:
                return token
            said = _say(value)
            return token if said is None else said

        rendered = _DOUBLE.sub(fill, text)
        for m in _PLACEHOLDER.finditer(rendered):
            self.add("placeholder", f"the user says {m.group(0)!r}: {_clip(rendered)}", turn)
        return rendered

    # -- the conversation ------------------------------------------------------------
    def convert(self) -> Conversation:
        obj = self.obj
        raw_seed = self.raw_seed()
        today = self.reference_date(raw_seed)
        seed = self.seed(raw_seed, today)
        store = MemoryStore()
        for table in LOAD_ORDER:
            for record in seed.get(table, ()):
                store.insert(table, record_from_json(BY_TABLE[table], record))
        crm = CRM(store, clock=FixedClock(today), ids=DeterministicIds(self.conv_id))
        raw_turns: list[Any] = list(obj["turns"])
        if len(raw_turns) > MAX_TURNS:
            self.add("too-many-turns", f"{len(raw_turns)} turns (at most {MAX_TURNS})")
        results: dict[int, list[Any]] = {}
        calls_per_turn: dict[int, int] = {}
        said: list[str] = []
        turns: list[dict[str, Any]] = []
        tools: list[str] = []
        checkable = False  # some turn writes, must be refused, or has a fact to convey
        for number, raw in enumerate(raw_turns, 1):
            before = store.dump()
            turns.append(self.turn(number, raw, crm, today, results, calls_per_turn, said))
            tools += [c["tool"] for c in turns[-1]["expected_calls"]]
            last = turns[-1]
            checkable |= (
                last.get("expect") == "failure"
                or bool((last.get("reply") or {}).get("must_mention"))
                or store.dump() != before
            )
        if raw_turns and not checkable and not any(d.blocking for d in self.defects):
            self.add(
                "no-check",
                "no turn writes, is refused or has a fact to convey: any agent would pass",
            )
        n = len(turns)
        complexity = complexity_for(n)
        upstream = obj.get("complexity_level")
        upstream_text = upstream if isinstance(upstream, str) else json.dumps(upstream)
        if upstream != complexity:
            low, high = TURNS_BY_COMPLEXITY[complexity]
            self.add(
                "complexity-mismatch",
                f"declared {upstream_text!r} but {n} turns is {complexity!r} ({low}–{high})",
            )
        category = obj.get("workflow_category")
        category_text = category if isinstance(category, str) else ""
        tags = [
            ARC_TAG,
            f"arc-complexity:{upstream_text}",
            f"arc-workflow:{category_text}",
        ]
        if self.conv_id != self.source_id:
            tags.append(f"arc-id:{self.source_id}")
        data = {
            "format": FORMAT,
            "id": self.conv_id,
            "workflow": workflow_for(category_text, tools),
            "complexity": complexity,
            "reference_date": today.isoformat(),
            "seed": seed,
            "turns": turns,
            "tags": tags,
        }
        try:
            return Conversation.model_validate(data)
        except ValidationError as exc:
            if not any(d.blocking for d in self.defects):
                err = exc.errors()[0]
                loc = ".".join(str(p) for p in err["loc"])
                self.add("invalid-conversation", f"{loc}: {err['msg']}")
            return stub_conversation(data)

    def turn(
        self,
        number: int,
        raw: Mapping[str, Any],
        crm: CRM,
        today: date,
        results: dict[int, list[Any]],
        calls_per_turn: dict[int, int],
        said: list[str],
    ) -> dict[str, Any]:
        turn_id = raw.get("turn_id", number)
        if turn_id != number:
            self.add("invalid-conversation", f"turn_id {turn_id!r} at position {number}", number)
        utterance = raw.get("user_utterance")
        if not isinstance(utterance, str) or not utterance.strip():
            self.add("invalid-conversation", "user_utterance is not a non-blank string", number)
            utterance = "" if not isinstance(utterance, str) else utterance
        user = self.render(utterance, number, results)
        said.append(user)
        expect_success = raw.get("expect_success", True) is not False
        substring = raw.get("expected_error_substring")
        if not expect_success and not (isinstance(substring, str) and substring.strip()):
            self.add(
                "invalid-conversation",
                "expect_success is false but expected_error_substring is empty",
                number,
            )
            substring = None
        turn: dict[str, Any] = {"user": user, "expected_calls": []}
        if not expect_success:
            turn["expect"] = "failure"
            turn["error_contains"] = substring or "?"
        tool = raw.get("expected_tool")
        raw_args = raw.get("expected_args")
        if raw_args is None:
            raw_args = {}
        if not isinstance(raw_args, Mapping):
            self.add("invalid-conversation", "expected_args is not an object", number)
            raw_args = {}
        if tool is None or tool == "":
            results[number] = []
            calls_per_turn[number] = 0
            if not expect_success:
                self.add(
                    "reference-call-failed", "a refusal is expected but no call is made", number
                )
            return turn
        spec = BY_TOOL.get(tool) if isinstance(tool, str) else None
        calls_per_turn[number] = 1
        if spec is None or not spec.agent:
            self.add("unknown-tool", f"{tool!r} is not one of the 28 tools", number)
            turn["expected_calls"] = [{"tool": str(tool), "args": dict(raw_args)}]
            results[number] = [None]
            return turn
        args = self.normalise_args(spec, raw_args, number)
        turn["expected_calls"] = [{"tool": spec.name, "args": args}]
        if spec.group == "search" and not args:
            self.add("empty-search", f"{spec.name} with no criteria: any search passes", number)
        runnable = self.check_arg_refs(args, number, calls_per_turn)
        for path, value in unstated_values(spec.name, args, "\n".join(said), today):
            self.add(
                "unstated-value",
                f"{spec.name} {path}={describe_value(value)} is never stated by the user",
                number,
            )
        result: Any = None
        if runnable:
            result = self.execute(spec, args, number, crm, results, expect_success, substring)
        results[number] = [result]
        if expect_success and result is not None:
            facts = reply_facts(spec, result)
            if facts:
                turn["reply"] = {"must_mention": facts}
        return turn

    def execute(
        self,
        spec: ToolSpec,
        args: Mapping[str, Any],
        number: int,
        crm: CRM,
        results: Mapping[int, list[Any]],
        expect_success: bool,
        substring: str | None,
    ) -> Any:
        try:
            resolved = resolve(dict(args), results)
        except RefError as exc:
            self.add("broken-reference", str(exc), number)
            return None
        try:
            result = crm.call(spec.name, resolved, agent=True)
        except CrmError as exc:
            if expect_success:
                self.add("reference-call-failed", f"{spec.name} failed: {exc.message}", number)
            elif substring and substring not in exc.message:
                self.add(
                    "reference-call-failed",
                    f"{spec.name} was refused with {exc.message!r}, not {substring!r}",
                    number,
                )
            return None
        if not expect_success:
            self.add(
                "reference-call-failed",
                f"{spec.name} succeeded where a refusal ({substring!r}) is expected",
                number,
            )
            return None
        return result


def _ref_problem(ref: Ref, turn: int, calls: Mapping[int, int]) -> str | None:
    if ref.turn >= turn:
        return f"{ref.text}: forward reference (turn {turn} refers to turn {ref.turn})"
    n_calls = calls.get(ref.turn, 0)
    if n_calls == 0:
        return f"{ref.text}: turn {ref.turn} has no expected call"
    if ref.call is not None and ref.call >= n_calls:
        return f"{ref.text}: turn {ref.turn} has {n_calls} call(s)"
    return None


def _say(value: Any) -> str | None:
    """How a user says a referenced value (scalars only)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    return None


def _clip(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


# == derived parts ===================================================================
def workflow_for(category: str, tools: Sequence[str]) -> str:
    """The upstream category when it names a workflow; else from the tools used: the
    first write tool's workflow, or the most used tool's."""
    known = _WORKFLOW_ALIASES.get(" ".join(category.casefold().split()))
    if known:
        return known
    writes = [
        t for t in tools if t in BY_TOOL and BY_TOOL[t].group in ("create", "modify", "lifecycle")
    ]
    if writes and writes[0] in workflows.BY_TOOL:
        return workflows.BY_TOOL[writes[0]]
    counted = Counter(workflows.BY_TOOL[t] for t in tools if t in workflows.BY_TOOL)
    if counted:
        best = max(counted.values())
        for t in tools:  # first of the most used, for determinism
            if workflows.BY_TOOL.get(t) and counted[workflows.BY_TOOL[t]] == best:
                return workflows.BY_TOOL[t]
    return workflows.DEFAULT


def _label(record: Mapping[str, Any], key: str | None) -> str | None:
    """What names a record in a reply: its name, a contact's full name, a file name, or
    its id."""
    name = record.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    first, last = record.get("first_name"), record.get("last_name")
    if isinstance(first, str) and isinstance(last, str) and (first.strip() or last.strip()):
        return f"{first.strip()} {last.strip()}".strip()
    file_name = record.get("file_name")
    if isinstance(file_name, str) and file_name.strip():
        return file_name.strip()
    for k in (key, *(k for k in record if k.endswith("_id"))):
        if k and isinstance(record.get(k), str) and record[k].strip():
            return str(record[k])
    return None


def reply_facts(spec: ToolSpec, result: Any, limit: int = 3) -> list[str]:
    """Facts the reply must convey, from the reference result: the names (or ids) of up
    to ``limit`` returned records, else how many were returned."""
    key = spec.entity.key if spec.entity is not None else None
    if isinstance(result, Mapping):
        if spec.name == "summarize_opportunities" and "count" in result:
            return [str(result["count"])]
        if spec.name == "compare_quote_details" and isinstance(result.get("quotes"), list):
            return reply_facts(spec, result["quotes"], limit)
        label = _label(result, key)
        return [label] if label else []
    if isinstance(result, list):
        if not result:
            return []
        if len(result) > limit:
            return [str(len(result))]
        facts: list[str] = []
        for item in result:
            label = _label(item, key) if isinstance(item, Mapping) else _say(item)
            if label and label not in facts:
                facts.append(label)
        return facts
    said = _say(result)
    return [said] if said else []


def stub_conversation(data: Mapping[str, Any]) -> Conversation:
    """A conversation the model cannot validate (placeholders, unknown tools…), built
    without validation so that it can still be collected — and skipped."""
    turns = []
    for t in data["turns"]:
        reply = t.get("reply") or {}
        turns.append(
            Turn.model_construct(
                user=t["user"],
                expected_calls=[
                    ExpectedCall.model_construct(tool=c["tool"], args=c["args"])
                    for c in t["expected_calls"]
                ],
                expect=t.get("expect", "success"),
                error_contains=t.get("error_contains"),
                reply=Reply.model_construct(
                    must_mention=list(reply.get("must_mention", [])), rubric=None
                ),
            )
        )
    return Conversation.model_construct(
        format=FORMAT,
        id=data["id"],
        workflow=data["workflow"],
        complexity=data["complexity"],
        reference_date=date.fromisoformat(data["reference_date"]),
        seed=data["seed"],
        turns=turns,
        tags=list(data["tags"]),
        title=None,
    )


# == entry points ====================================================================
def convert_arc(
    obj: Mapping[str, Any], *, conv_id: str | None = None, line: int = 0
) -> ArcConversation:
    """Convert one parsed upstream line (already known to be Arc-shaped) — never raises
    for what the line holds: anything unexpected becomes an ``invalid-conversation``."""
    source_id = str(obj.get("conversation_id"))
    cid = conv_id or project_id(source_id)
    converter = _Converter(obj, cid, source_id)
    try:
        conv = converter.convert()
    except Exception as exc:  # an imported line must never crash the run
        converter.add("invalid-conversation", f"import failed: {type(exc).__name__}: {exc}")
        conv = _minimal_stub(obj, cid)
    return ArcConversation(conv, tuple(converter.defects), source_id, line)


def _minimal_stub(obj: Mapping[str, Any], conv_id: str) -> Conversation:
    raw = obj.get("turns")
    turns: list[Any] = raw if isinstance(raw, list) else []
    n = max(len(turns), 1)
    return stub_conversation(
        {
            "id": conv_id,
            "workflow": workflows.DEFAULT,
            "complexity": complexity_for(n),
            "reference_date": ARC_REFERENCE_DATE.isoformat(),
            "seed": {},
            "turns": [
                {
                    "user": str(t.get("user_utterance", "")) if isinstance(t, Mapping) else "",
                    "expected_calls": [],
                }
                for t in turns
            ],
            "tags": [ARC_TAG],
        }
    )


def import_arc_file(
    path: Path,
    data: bytes,
    locations: dict[str, tuple[Path, int]],
    source_ids: dict[str, str] | None = None,
) -> ArcFile:
    """Import every line of an upstream file.

    ``locations`` (project id → file, line) and ``source_ids`` (upstream id → project
    id) span all files of a dataset: a repeated upstream id is a ``duplicate-id``
    defect, an id that only collides after :func:`project_id` gets a ``-2`` suffix.
    """
    sources = {} if source_ids is None else source_ids
    out = ArcFile([], {}, [], [])
    name = str(path)
    for number, raw in enumerate(data.split(b"\n"), 1):
        if len(out.problems) >= MAX_PROBLEMS_PER_FILE:
            out.problems.append(
                Problem(name, None, f"stopped after {MAX_PROBLEMS_PER_FILE} problems")
            )
            break
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            out.problems.append(
                Problem(name, number, f"not valid UTF-8 ({e.reason} at byte {e.start})")
            )
            continue
        if not text.strip():
            continue
        try:
            obj = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as e:
            out.problems.append(Problem(name, number, f"invalid JSON: {e.msg} (column {e.colno})"))
            continue
        except ValueError as e:
            out.problems.append(Problem(name, number, f"invalid JSON: {e}"))
            continue
        if not isinstance(obj, dict):
            out.problems.append(
                Problem(name, number, "expected a JSON object (one Arc conversation per line)")
            )
            continue
        problem = structure_problem(obj)
        if problem is not None:
            out.problems.append(Problem(name, number, f"{problem} ({ARC_LINE})"))
            continue
        source_id = obj["conversation_id"]
        base = project_id(source_id)
        cid, n = base, 1
        while cid in locations:
            n += 1
            cid = f"{base}-{n}"
        item = convert_arc(obj, conv_id=cid, line=number)
        if source_id in sources:
            first = locations.get(sources[source_id])
            where = f"{first[0]}:{first[1]}" if first else "earlier"
            item = ArcConversation(
                item.conversation,
                (*item.defects, Defect("duplicate-id", f"{source_id!r} first defined at {where}")),
                item.source_id,
                number,
            )
        else:
            sources[source_id] = cid
        locations[cid] = (path, number)
        out.items.append(item)
        out.conversations.append(item.conversation)
        out.defects[cid] = item.defects
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
