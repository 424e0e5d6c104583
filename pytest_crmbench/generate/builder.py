"""Building one conversation turn by turn against a live CRM.

Tasks (:mod:`.workflows`) write the user's words and the reference calls with real ids; the
:class:`Builder` executes each turn at once on a memory store (same clock and id factory
as the runner's reference run), so tasks can look at real results when they choose
values and reply facts. When the conversation is finished, ids of records created
during it are replaced by references to the turn that created them
(``{{turn_2.quote_id}}``); ids of seed records stay literal, as a user's lookups find
them.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pytest_crmbench.crm.clock import DeterministicIds, FixedClock
from pytest_crmbench.crm.entities import BY_TABLE, LOAD_ORDER, Record
from pytest_crmbench.crm.errors import CrmError
from pytest_crmbench.crm.memory import MemoryStore
from pytest_crmbench.crm.seed import record_from_json
from pytest_crmbench.crm.service import CRM, out
from pytest_crmbench.generate import phrasing as P
from pytest_crmbench.generate import replies as R

REFERENCE_DATE = date(2025, 10, 1)
GEN_NAMESPACE = uuid.UUID("7d0f3a52-9b8e-5c41-a6d2-3e9f1b2c4d5e")

KEY_OF = {
    "client": "client_id",
    "contact": "contact_id",
    "opportunity": "opportunity_id",
    "quote": "quote_id",
    "contract": "contract_id",
}
TABLE_OF = {
    "client": "clients",
    "contact": "contacts",
    "opportunity": "opportunities",
    "quote": "quotes",
    "contract": "contracts",
}
CREATES = {
    "create_new_client": "client_id",
    "create_new_contact": "contact_id",
    "create_new_opportunity": "opportunity_id",
    "clone_opportunity": "opportunity_id",
    "create_quote": "quote_id",
    "create_contract": "contract_id",
    "upload_document": "document_id",
    "add_note": "note_id",
}
WRITES = frozenset(
    {
        *CREATES,
        "modify_client",
        "modify_contact",
        "modify_opportunity",
        "modify_quote",
        "delete_opportunity",
        "delete_quote",
        "cancel_quote",
    }
)
CLOSED = ("Closed-Won", "Closed-Lost")
OPEN_STAGES = ("Prospecting", "Qualification", "Proposal", "Negotiation")


class Retry(Exception):
    """This attempt cannot be completed as planned; start the conversation again."""


class Skip(Exception):
    """The task does not apply now (nothing was committed); try another one."""


class GenerationBug(Exception):
    """A task produced calls that do not behave as it declared (a generator bug)."""


@dataclass
class Call:
    tool: str
    args: dict[str, Any] = field(default_factory=dict)


Facts = Callable[[list[Any]], list[str]]


@dataclass
class Draft:
    """One turn as a task writes it (real ids in the arguments)."""

    user: str
    calls: list[Call]
    topic: str
    task: str
    facts: Facts | None = None
    expect: str = "success"
    error_contains: str | None = None
    mentions: Sequence[tuple[str, str]] = ()  # (kind, id) the user talked about
    listed: tuple[str, Sequence[str]] | None = None  # a list the user was shown
    avoid: Facts | None = None  # read turns: records that do not match, nearest first
    rubric: Callable[[list[Any]], str] | None = None  # for the judge, where quality matters


@dataclass
class BuiltTurn:
    user: str
    calls: list[Call]
    results: list[Any]
    errors: list[str | None]
    facts: list[str]
    expect: str
    error_contains: str | None
    topic: str
    task: str
    avoid: list[str] = field(default_factory=list)
    rubric: str | None = None


def short_client(name: str) -> str:
    """The deal-name prefix for a client: 'Solstice Solar Co.' -> 'Solstice Solar'."""
    return name.replace(" Co.", "").replace(" LLP", "").strip()


def split_deal(name: str) -> tuple[str, str] | None:
    if " – " in name and "(Clone)" not in name:
        head, _, topic = name.partition(" – ")
        return head, topic
    return None


class Builder:
    """One attempt at one conversation: live CRM, turns so far, what the user has seen."""

    def __init__(
        self,
        store: MemoryStore,
        rng: random.Random,
        conv_id: str,
        workflow: str,
        local_seed: dict[str, list[dict[str, Any]]],
    ) -> None:
        store.reset()
        for table in LOAD_ORDER:
            for raw in local_seed.get(table, ()):
                store.insert(table, record_from_json(BY_TABLE[table], dict(raw)))
        self.store = store
        self.rng = rng
        self.conv_id = conv_id
        self.workflow = workflow
        self.local_seed = local_seed
        self.today = REFERENCE_DATE
        self.crm = CRM(
            store, clock=FixedClock(REFERENCE_DATE), ids=DeterministicIds(conv_id + "#reference")
        )
        self.turns: list[BuiltTurn] = []
        self._rows: dict[str, list[Record]] = {}
        self.created: dict[str, tuple[int, int, str]] = {}  # id -> (turn, call, key field)
        self.known: set[str] = set()
        self.kind_of: dict[str, str] = {}
        self.last_mentions: list[tuple[str, str]] = []
        self.focus: dict[str, str] = {}
        self.listed: tuple[str, list[str]] | None = None
        self.deleted: dict[str, str] = {}
        self.deleted_records: dict[str, Record] = {}
        self.clones: set[str] = set()
        self.extra_tags: set[str] = set()
        self.used_emails: set[str] = set()
        self.used_heads: set[str] = set()
        self.used_topics: set[str] = set()
        self.used_files: set[str] = set()
        self.local_ids: set[str] = {
            str(r[k]) for t, rs in local_seed.items() for r in rs for k in r if k.endswith("_id")
        }

    # == reading the live store ======================================================
    def rows(self, table: str) -> list[Record]:
        """Every record of a table as tools return them (cached until the next write)."""
        cached = self._rows.get(table)
        if cached is None:
            cached = self._rows[table] = [out(r) for r in self.store.find(table)]
        return list(cached)

    def get(self, kind: str, rid: str) -> Record:
        record = self.store.get(TABLE_OF[kind], rid)
        if record is None:
            raise Retry(f"{kind} {rid} vanished")
        return out(record)

    def exists(self, kind: str, rid: str) -> bool:
        return self.store.get(TABLE_OF[kind], rid) is not None

    def probe(self, tool: str, args: dict[str, Any]) -> Any:
        """Run a read-only tool without recording it (to choose values)."""
        return self.crm.call(tool, args, agent=True)

    def client_name(self, cid: str) -> str:
        return str(self.get("client", cid)["name"])

    def open_opps(self) -> list[Record]:
        return [o for o in self.rows("opportunities") if o["stage"] not in CLOSED]

    def closed_opps(self) -> list[Record]:
        return [o for o in self.rows("opportunities") if o["stage"] in CLOSED]

    # == context =====================================================================
    @property
    def first(self) -> bool:
        return not self.turns

    @property
    def turn_no(self) -> int:
        """The number of the turn being written (1-based)."""
        return len(self.turns) + 1

    def recent(self, kind: str) -> str | None:
        rid = self.focus.get(kind)
        if rid is None or rid in self.deleted or not self.exists(kind, rid):
            return None
        return rid

    def fresh(self, rid: str) -> bool:
        """Mentioned in the previous turn (so "it"/"that deal" is clear)."""
        return any(r == rid for _, r in self.last_mentions)

    def fresh_only(self, kind: str, rid: str) -> bool:
        """The one record of its kind the previous turn was about (so "it" is clear)."""
        same = [r for k, r in self.last_mentions if k == kind]
        return same == [rid] and self.last_mentions[-1] == (kind, rid)

    def prefer(self, kind: str, candidates: Sequence[Record], p_focus: float = 0.75) -> Record:
        """The focus record of ``kind`` if it is a candidate (usually), else a random one."""
        if not candidates:
            raise Retry(f"no {kind} candidates")
        key = KEY_OF[kind]
        if self.listed and self.listed[0] == kind and self.rng.random() < 0.5:
            pool = [c for c in candidates if c[key] in self.listed[1]]
            if pool:
                return self.rng.choice(pool)
        rid = self.recent(kind)
        if rid is not None and self.rng.random() < p_focus:
            for c in candidates:
                if c[key] == rid:
                    return c
        return self.choose(candidates, key)

    def choose(self, candidates: Sequence[Record], key: str) -> Record:
        """A random candidate; the conversation's own seed records are favoured."""
        local = [c for c in candidates if c[key] in self.local_ids]
        if local and self.rng.random() < 0.4:
            return self.rng.choice(local)
        return self.rng.choice(list(candidates))

    # == executing a turn ============================================================
    def commit(self, draft: Draft) -> BuiltTurn:
        number = self.turn_no
        self._rows.clear()
        results: list[Any] = []
        errors: list[str | None] = []
        for call in draft.calls:
            if call.tool.startswith("delete_"):
                kind = call.tool.removeprefix("delete_")
                rid = str(call.args.get(KEY_OF[kind]))
                before = self.store.get(TABLE_OF[kind], rid)
                if before is not None:
                    self.deleted_records[rid] = out(before)
            for value in _strings(call.args):
                origin = self.created.get(value)
                if origin is not None and origin[0] >= number:
                    raise GenerationBug(f"{draft.task}: uses an id created in the same turn")
            try:
                result = self.crm.call(call.tool, call.args, agent=True)
                results.append(result)
                errors.append(None)
            except CrmError as exc:
                results.append(None)
                errors.append(exc.message)
        failed = [e for e in errors if e is not None]
        if draft.expect == "success" and failed:
            raise GenerationBug(f"{draft.task}: reference call failed: {failed[0]}")
        if draft.expect == "failure":
            if errors[-1] is None or any(e is not None for e in errors[:-1]):
                raise GenerationBug(f"{draft.task}: refusal did not fail as planned: {errors}")
            assert draft.error_contains is not None
            if draft.error_contains not in errors[-1]:
                raise GenerationBug(f"{draft.task}: {errors[-1]!r} lacks {draft.error_contains!r}")
        facts, avoid = self._reply(draft, results, errors)
        mentions = list(draft.mentions)
        kinds = {v: k for k, v in KEY_OF.items()}
        for index, (call, result) in enumerate(zip(draft.calls, results, strict=True)):
            key = CREATES.get(call.tool)
            if key is not None and isinstance(result, dict) and key in result:
                rid = str(result[key])
                self.created[rid] = (number, index, key)
                if key in kinds:
                    mentions.append((kinds[key], rid))
                if call.tool == "clone_opportunity":
                    self.clones.add(rid)
            if call.tool.startswith("delete_") and isinstance(result, dict):
                kind = call.tool.removeprefix("delete_")
                self.deleted[str(result[KEY_OF[kind]])] = kind
        turn = BuiltTurn(
            user=draft.user,
            calls=draft.calls,
            results=results,
            errors=errors,
            facts=facts,
            expect=draft.expect,
            error_contains=draft.error_contains,
            topic=draft.topic,
            task=draft.task,
            avoid=avoid,
            rubric=draft.rubric(results) if draft.rubric is not None else None,
        )
        self.turns.append(turn)
        self.last_mentions = mentions
        for kind, rid in mentions:
            self.known.add(rid)
            self.kind_of[rid] = kind
            if rid not in self.deleted:
                self.focus[kind] = rid
        self.listed = (draft.listed[0], list(draft.listed[1])) if draft.listed else None
        if self.listed:
            self.known.update(self.listed[1])
        return turn

    def _reply(
        self, draft: Draft, results: list[Any], errors: list[str | None]
    ) -> tuple[list[str], list[str]]:
        """The turn's required facts and records to leave out (:mod:`.replies`).

        Raises :class:`Skip` (before anything is recorded; a read changed nothing) when a
        read turn would be passed by echoing the user or by dumping every search.
        """
        facts = draft.facts(results) if draft.facts is not None else []
        if draft.expect == "failure":
            return [*facts, R.reason_fact(str(errors[-1]))], []
        if any(c.tool in WRITES for c in draft.calls):
            return facts, []
        facts = [f for f in facts if not R.echoed(f, draft.user)]
        if all(R.guessable(f) for f in facts):
            raise Skip("the user's words or a guess would give every fact")
        if all(c.tool in R.UNBOUNDED for c in draft.calls):
            return facts, []
        if draft.avoid is None:
            raise GenerationBug(f"{draft.task}: a read turn without records to leave out")
        earlier = [text for t in self.turns for text in (t.user, *t.facts)]
        avoid = R.clean_avoid(
            draft.avoid(results),
            results=R.result_text(results),
            user=draft.user,
            facts=facts,
            earlier=earlier,
        )
        if not avoid:
            raise Skip("no record outside the answer to tell over-reporting by")
        return facts, avoid

    # == references ==================================================================
    def ref_for(self, rid: str) -> str:
        number, index, key = self.created[rid]
        turn = self.turns[number - 1]
        simple = True
        for result in turn.results[:index]:
            first = result[0] if isinstance(result, list) and result else result
            if isinstance(first, dict) and key in first:
                simple = False
        if simple:
            return f"{{{{turn_{number}.{key}}}}}"
        return f"{{{{turn_{number}.calls[{index}].result.{key}}}}}"

    def with_refs(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.ref_for(value) if value in self.created else value
        if isinstance(value, dict):
            return {k: self.with_refs(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.with_refs(v) for v in value]
        return value

    # == values ======================================================================
    def new_email(self, local: str, domain: str) -> str:
        email = f"{local}@{domain}".lower()
        taken = {str(c["email"]).lower() for c in self.rows("clients")}
        if email in taken or email in self.used_emails:
            raise Retry("email taken")
        self.used_emails.add(email)
        return email

    def future_date(self, low: int = 14, high: int = 420) -> date:
        from datetime import timedelta

        for _ in range(20):
            d = self.today + timedelta(days=self.rng.randint(low, high))
            roll = self.rng.random()
            if roll < 0.35:
                d = d.replace(day=15)
            elif roll < 0.6:
                nxt = (d.replace(day=28) + timedelta(days=4)).replace(day=1)
                d = nxt - timedelta(days=1)
            if d > self.today:
                return d
        return self.today + timedelta(days=30)

    def past_date(self) -> date:
        from datetime import timedelta

        return self.today - timedelta(days=self.rng.randint(3, 400))

    def amount(self, low: float = 5_000, high: float = 2_500_000) -> float:
        import math

        value = math.exp(self.rng.uniform(math.log(low), math.log(high)))
        if value < 20_000:
            step = self.rng.choice((250, 500, 500, 1000))
        elif value < 200_000:
            step = self.rng.choice((500, 1000, 1000, 2500, 5000))
        elif value < 1_000_000:
            step = self.rng.choice((1000, 5000, 10_000, 25_000))
        else:
            step = self.rng.choice((10_000, 50_000, 100_000, 250_000))
        return float(max(step, round(value / step) * step))

    def say_money(self, amount: float) -> str:
        return P.money(self.rng, amount)

    def money_adj(self, amount: float) -> str:
        return P.money_adj(self.rng, amount)

    def say_date(self, d: date, *, with_short: bool = True) -> str:
        return P.say_date(self.rng, d, self.today, with_short=with_short)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def local_id(seed: int, conv_id: str, table: str, index: int) -> str:
    """Deterministic id of a conversation's own seed record."""
    return str(uuid.uuid5(GEN_NAMESPACE, f"{seed}/{conv_id}/{table}/{index}"))


def stamp(rng: random.Random, *, year: int = 2025, month_high: int = 9) -> str:
    """A creation timestamp before the reference date (for a conversation's own records)."""
    moment = datetime(
        year, rng.randint(1, month_high), rng.randint(1, 28), rng.randint(8, 17), rng.randint(0, 59)
    )
    return moment.isoformat() + "+00:00"
