"""``crmbench generate``: the shipped dataset, deterministically from a seed.

1. A plan fixes, per conversation, its complexity (23/52/25 %), workflow and whether it
   holds a refusal (15 %) — exact counts, shuffled with the seed.
2. Each conversation is built turn by turn (:class:`~.builder.Builder`): tasks are drawn
   from the workflow's menu or, for the other turns, from the production task mix
   (``data/task_frequencies.json``, rare tools floored so each is measured).
3. Replies are made to measure the work (:mod:`.replies`): a refusal names its reason,
   a read turn asks for facts the user did not say and lists records outside the answer
   (``must_not_mention``, :mod:`.precision`); summaries, comparisons and details views
   carry a rubric for the judge.
4. It is validated by executing its reference calls with the runner's reference run:
   the results must equal the builder's, every reply fact must be found in its turn's
   results and no record to leave out, and every turn must be one the ``noop`` agent
   fails. Attempts that do not meet the plan (workflow not the main topic, duplicate
   conversation) are redrawn.
5. A stratified subset (complexity × workflow) is drawn with seed 42.

Only ``random.Random(seed)`` is used; nothing depends on time, uuid4 or set order.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_crmbench.backends import open_memory_store
from pytest_crmbench.crm.seed import load_seed_world
from pytest_crmbench.dataset.facts import fact_present
from pytest_crmbench.dataset.loader import dump_conversation
from pytest_crmbench.dataset.model import FORMAT, Conversation, ExpectedCall, Reply, Turn
from pytest_crmbench.generate.builder import (
    REFERENCE_DATE,
    WRITES,
    Builder,
    BuiltTurn,
    GenerationBug,
    Retry,
    Skip,
)
from pytest_crmbench.generate.localseed import make_local_seed
from pytest_crmbench.generate.workflows import (
    CLIENT,
    COMPANY,
    CONTACT,
    CONTRACT,
    DOCUMENT,
    NOTES,
    OPP,
    QUOTE,
    REFUSALS,
    TASKS,
)
from pytest_crmbench.locations import data_file
from pytest_crmbench.runner.runner import Runner

DEFAULT_SEED = 42
DEFAULT_COUNT = 1200
SUBSET_SIZE = 400
SUBSET_SEED = 42
FULL_FILE = "conversations.jsonl"
SUBSET_FILE = "conversations_400.jsonl"

COMPLEXITY_SHARES = (("simple", 0.23), ("medium", 0.52), ("complex", 0.25))
TURNS = {
    "simple": ((1, 2, 3), (30, 40, 30)),
    "medium": ((4, 5, 6), (1, 1, 1)),
    "complex": ((7, 8, 9, 10), (30, 30, 22, 18)),
}
WORKFLOW_SHARES = (
    (OPP, 0.34),
    (QUOTE, 0.14),
    (DOCUMENT, 0.12),
    (CLIENT, 0.09),
    (CONTACT, 0.09),
    (CONTRACT, 0.08),
    (COMPANY, 0.07),
    (NOTES, 0.07),
)
WORKFLOWS = tuple(w for w, _ in WORKFLOW_SHARES)
REFUSAL_SHARE = 0.15

# What a conversation of each workflow is mostly made of (task -> weight). Frequent
# production tasks keep their production weight; rare ones are floored.
WORKFLOW_MENU: dict[str, dict[str, float]] = {
    OPP: {
        "create_new_opportunity": 3683,
        "modify_opportunity": 2939,
        "find_opportunity": 1250,
        "list_opportunities": 1029,
        "view_opportunity_details": 878,
        "clone_opportunity": 267,
        "summarize_opportunities": 194,
        "opportunity_details": 150,
        "delete_opportunity": 190,
    },
    QUOTE: {
        "create_quote": 1804,
        "modify_quote": 320,
        "quote_search": 300,
        "cancel_quote": 260,
        "quote_details": 260,
        "compare_quotes": 230,
        "compare_quote_details": 230,
        "delete_quote": 200,
        "quote_prefixes": 320,
        "view_opportunity_details": 120,
    },
    DOCUMENT: {"upload_document": 2190, "opp_documents": 520, "quote_documents": 260},
    CLIENT: {
        "create_new_client": 142,
        "client_lookup": 110,
        "modify_client": 110,
        "client_list": 82,
        "account_deals": 20,
        "account_pipeline": 20,
        "client_note": 25,
        "client_document": 20,
    },
    CONTACT: {
        "contact_lookup": 200,
        "contact_list": 175,
        "create_new_contact": 160,
        "modify_contact": 110,
        "contact_note": 45,
    },
    CONTRACT: {
        "create_contract": 100,
        "contract_search": 100,
        "contract_document": 45,
        "contract_note": 30,
    },
    COMPANY: {
        "company_search": 100,
        "account_deals": 40,
        "account_pipeline": 40,
        "client_lookup": 40,
        "client_list": 30,
        "modify_client": 30,
        "contact_list": 20,
        "contract_search": 15,
    },
    NOTES: {"add_note": 100, "opp_notes": 30, "quote_notes": 15},
}
FOLLOW: dict[str, tuple[str, ...]] = {
    "opportunity": (
        "create_quote",
        "modify_opportunity",
        "upload_document",
        "add_note",
        "clone_opportunity",
        "view_opportunity_details",
        "opp_documents",
        "opp_notes",
        "create_contract",
    ),
    "quote": (
        "modify_quote",
        "cancel_quote",
        "upload_document",
        "add_note",
        "quote_details",
        "quote_documents",
        "compare_quotes",
        "compare_quote_details",
    ),
    "client": (
        "create_new_opportunity",
        "create_new_contact",
        "modify_client",
        "create_contract",
        "add_note",
        "account_deals",
        "account_pipeline",
        "contact_list",
    ),
    "contact": ("modify_contact", "add_note"),
    "contract": ("upload_document", "add_note", "contract_search"),
}
CREATING = frozenset(
    {
        "create_new_opportunity",
        "create_quote",
        "clone_opportunity",
        "create_new_client",
        "create_new_contact",
        "create_contract",
    }
)
# Medium/complex conversations often start by creating the record they then work on.
OPENERS: dict[str, tuple[str, ...]] = {
    OPP: ("create_new_opportunity", "clone_opportunity"),
    QUOTE: ("create_quote",),
    DOCUMENT: ("create_quote", "create_new_opportunity", "create_contract", "create_new_client"),
    CLIENT: ("create_new_client",),
    CONTACT: ("create_new_contact", "create_new_client"),
    CONTRACT: ("create_contract",),
    COMPANY: ("create_new_client", "create_new_contact"),
    NOTES: ("create_new_contact", "create_new_opportunity", "create_quote", "create_contract"),
}
TOOL_FLOOR = 110  # production count floor for the out-of-workflow mix
SPLIT = {  # tools served by several tasks: how the production weight is shared
    "opportunity_search": {"find_opportunity": 0.55, "list_opportunities": 0.45},
    "client_search": {"client_lookup": 0.55, "client_list": 0.45},
    "contact_search": {"contact_lookup": 0.5, "contact_list": 0.5},
}


def task_frequencies() -> dict[str, int]:
    data = json.loads((data_file("task_frequencies.json")).read_text("utf-8"))
    return {str(t["tool"]): int(t["count"]) for t in data["tasks"]}


def global_menu() -> dict[str, float]:
    """The production task mix (every tool floored), as task -> weight."""
    menu: dict[str, float] = {}
    for tool, count in task_frequencies().items():
        weight = float(max(count, TOOL_FLOOR))
        shares = SPLIT.get(tool, {tool: 1.0})
        for task, share in shares.items():
            menu[task] = menu.get(task, 0.0) + weight * share
    return menu


@dataclass(frozen=True)
class PlanItem:
    conv_id: str
    complexity: str
    workflow: str
    refusal: bool


def _counts(total: int, shares: Sequence[tuple[str, float]]) -> list[tuple[str, int]]:
    """Largest-remainder apportionment of ``total`` over ``shares``."""
    exact = [(k, total * s) for k, s in shares]
    base = [(k, int(x)) for k, x in exact]
    left = total - sum(n for _, n in base)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i][1] - base[i][1]), i))
    counts = dict(base)
    for i in order[:left]:
        counts[exact[i][0]] += 1
    return [(k, counts[k]) for k, _ in shares]


def make_plan(rng: random.Random, count: int) -> list[PlanItem]:
    complexities = [k for k, n in _counts(count, COMPLEXITY_SHARES) for _ in range(n)]
    workflows = [k for k, n in _counts(count, WORKFLOW_SHARES) for _ in range(n)]
    rng.shuffle(complexities)
    rng.shuffle(workflows)
    refusals = [True] * round(count * REFUSAL_SHARE) + [False] * (
        count - round(count * REFUSAL_SHARE)
    )
    rng.shuffle(refusals)
    width = max(4, len(str(count)))
    return [
        PlanItem(f"CONV-{i + 1:0{width}d}", c, w, r)
        for i, (c, w, r) in enumerate(zip(complexities, workflows, refusals, strict=True))
    ]


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _json_number(value: Any) -> Any:
    """Whole floats as ints (85000, not 85000.0), recursively."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _json_number(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_number(v) for v in value]
    return value


def _list_sizes(value: Any) -> list[int]:
    """The sizes of the lists inside a result (a fact may be a count)."""
    if isinstance(value, dict):
        return [n for v in value.values() for n in _list_sizes(v)]
    if isinstance(value, list):
        return [len(value)] + [n for v in value for n in _list_sizes(v)]
    return []


def _people(value: Any) -> list[str]:
    """Full names of the contacts inside a result (a fact may be "First Last")."""
    if isinstance(value, dict):
        found = [f"{value['first_name']} {value['last_name']}"] if "first_name" in value else []
        return found + [p for v in value.values() for p in _people(v)]
    if isinstance(value, list):
        return [p for v in value for p in _people(v)]
    return []


class Generator:
    def __init__(self, seed: int = DEFAULT_SEED) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.world = load_seed_world()
        self.store = open_memory_store(self.world)
        self.runner = Runner(open_memory_store(self.world), self.world)
        self.global_menu = global_menu()
        self.signatures: set[str] = set()
        self.attempts = 0
        self.refusal_counts: dict[str, int] = {}
        self._last_task = ""

    # -- one conversation ------------------------------------------------------------
    def _pick_task(self, b: Builder, workflow: str) -> str:
        rng = self.rng
        p_in = 0.85 if b.first else 0.6
        menu = WORKFLOW_MENU[workflow] if rng.random() < p_in else self.global_menu
        names = list(menu)
        weights = [menu[n] for n in names]
        if b.turns:
            # Chain: favour what one does next with the record just talked about, and
            # do not ask for the same kind of thing twice in a row.
            follow = FOLLOW.get(b.last_mentions[-1][0], ()) if b.last_mentions else ()
            recent = {t.task for t in b.turns[-2:]}
            created = bool(b.created)
            for i, name in enumerate(names):
                if name in follow:
                    weights[i] *= 2.5
                if TASKS[name].tool == b.turns[-1].task or name == self._last_task:
                    weights[i] *= 0.1
                elif TASKS[name].tool in recent:
                    weights[i] *= 0.4
                if not created and name in CREATING and len(b.turns) < 3:
                    weights[i] *= 1.8
        return rng.choices(names, weights)[0]

    def _refusal(self, b: Builder, workflow: str, room: int) -> None:
        rng = self.rng
        fitting = [r for r in REFUSALS if workflow in r.topics]
        pool = fitting if fitting and rng.random() < 0.75 else list(REFUSALS)
        for _ in range(6):
            # Spread the kinds of refusal evenly: the less used a kind, the likelier.
            weights = [1.0 / (1 + self.refusal_counts.get(r.name, 0)) ** 2 for r in pool]
            refusal = rng.choices(pool, weights)[0]
            topic = workflow if workflow in refusal.topics else refusal.topics[0]
            before = len(b.turns)
            try:
                refusal.run(b, room, topic)
                self.refusal_counts[refusal.name] = self.refusal_counts.get(refusal.name, 0) + 1
                return
            except (Skip, Retry):
                if len(b.turns) != before:
                    raise Retry("refusal failed half-way") from None
        raise Retry("no refusal fits")

    def _attempt(self, item: PlanItem) -> Builder:
        rng = self.rng
        values, weights = TURNS[item.complexity]
        n = rng.choices(values, weights)[0]
        local = (
            make_local_seed(rng, self.seed, item.conv_id, self.store) if rng.random() < 0.45 else {}
        )
        b = Builder(self.store, rng, item.conv_id, item.workflow, local)
        refusal_at = rng.randrange(n) if item.refusal else -1
        if item.refusal and n > 2 and rng.random() < 0.6:
            refusal_at = rng.randrange(1, n)  # usually after some context
        skips = 0
        self._last_task = ""
        opener_at = -1
        if item.complexity != "simple" and rng.random() < 0.6:
            opener_at = rng.choice((0, 0, 1))
        while len(b.turns) < n:
            if len(b.turns) == refusal_at:
                self._refusal(b, item.workflow, n - len(b.turns))
                refusal_at = -2
                continue
            if len(b.turns) == opener_at:
                task = TASKS[rng.choice(OPENERS[item.workflow])]
            else:
                task = TASKS[self._pick_task(b, item.workflow)]
            before = len(b.turns)
            try:
                task.run(b, task.topic_for(item.workflow))
            except (Skip, Retry):
                if len(b.turns) != before:
                    raise Retry("task failed half-way") from None
                skips += 1
                if skips > 40:
                    raise Retry("stuck") from None
            else:
                self._last_task = task.name
        if item.refusal and refusal_at != -2:
            raise Retry("refusal not placed")
        if len(b.turns) != n:
            raise Retry("turn count")
        topics = [t.topic for t in b.turns]
        main = topics.count(item.workflow)
        if main == 0 or any(topics.count(t) > main for t in set(topics) if t != item.workflow):
            raise Retry("workflow is not the main topic")
        return b

    def conversation(self, item: PlanItem) -> Conversation:
        for _ in range(200):
            self.attempts += 1
            try:
                b = self._attempt(item)
            except Retry:
                continue
            conv = self._to_conversation(item, b)
            signature = json.dumps(
                [[t.user, [(c.tool, c.args) for c in t.expected_calls]] for t in conv.turns],
                sort_keys=True,
            )
            if signature in self.signatures:
                continue
            self._validate(conv, b.turns)
            self.signatures.add(signature)
            return conv
        raise GenerationBug(f"{item.conv_id}: no valid conversation after 200 attempts")

    def _to_conversation(self, item: PlanItem, b: Builder) -> Conversation:
        turns = []
        tools: set[str] = set()
        for t in b.turns:
            calls = [
                ExpectedCall(tool=c.tool, args=_json_number(b.with_refs(c.args))) for c in t.calls
            ]
            tools.update(c.tool for c in t.calls)
            facts = list(dict.fromkeys(t.facts))
            turns.append(
                Turn(
                    user=t.user,
                    expected_calls=calls,
                    expect="failure" if t.expect == "failure" else "success",
                    error_contains=t.error_contains,
                    reply=Reply(must_mention=facts, must_not_mention=t.avoid, rubric=t.rubric),
                )
            )
        tags = sorted(tools)
        if any(t.expect == "failure" for t in b.turns):
            tags.append("refusal")
        if "disambiguation" in b.extra_tags:
            tags.append("disambiguation")
        if any("{{turn_" in json.dumps(c.args) for t in turns for c in t.expected_calls):
            tags.append("cross-turn")
        return Conversation(
            format=FORMAT,
            id=item.conv_id,
            workflow=item.workflow,
            complexity=item.complexity,  # type: ignore[arg-type]
            reference_date=REFERENCE_DATE,
            seed=_json_number(b.local_seed),
            turns=turns,
            tags=tags,
            title=f"{_slug(item.workflow)}-{item.complexity}",
        )

    def _validate(self, conv: Conversation, built: list[BuiltTurn]) -> None:
        """Execute the reference calls; results, facts and noop-failure must hold."""
        reference = self.runner.reference_run(conv)  # raises DatasetDefect if incoherent
        for number, (turn, mine, ref) in enumerate(
            zip(conv.turns, built, reference.turns, strict=True), 1
        ):
            where = f"{conv.id} turn {number}"
            got = [c.get("result") if c["ok"] else c["error"] for c in ref.calls]
            want = [r if e is None else e for r, e in zip(mine.results, mine.errors, strict=True)]
            if json.dumps(got, sort_keys=True) != json.dumps(want, sort_keys=True):
                raise GenerationBug(f"{where}: reference run differs from the build")
            blob = json.dumps(got, ensure_ascii=False)
            blob += " " + " ".join(str(n) for n in _list_sizes(got))
            blob += " " + " ".join(_people(got))
            for fact in turn.reply.must_mention:
                if not fact_present(fact, blob):
                    raise GenerationBug(f"{where}: fact {fact!r} is not in the results")
            for value in turn.reply.must_not_mention:
                # An honest reply states the results and facts: none may hold what it
                # must leave out (the oracle's reply is exactly those facts).
                said = [blob, turn.user, *turn.reply.must_mention]
                if any(fact_present(value, text) for text in said) or any(
                    fact_present(f, value) for f in turn.reply.must_mention
                ):
                    raise GenerationBug(f"{where}: {value!r} to leave out is in the answer")
            writes = any(c["ok"] and c["tool"] in WRITES for c in ref.calls)
            telling = any(not fact_present(f, "Done.") for f in turn.reply.must_mention)
            if turn.expect == "success" and not (writes or telling):
                raise GenerationBug(f"{where}: the noop agent would pass this turn")
            if turn.expect == "success" and any(not c["ok"] for c in ref.calls):
                raise GenerationBug(f"{where}: a reference call failed")

    # -- the whole set ---------------------------------------------------------------
    def generate(self, count: int = DEFAULT_COUNT) -> list[Conversation]:
        plan = make_plan(self.rng, count)
        return [self.conversation(item) for item in plan]


def generate_dataset(seed: int = DEFAULT_SEED, count: int = DEFAULT_COUNT) -> list[Conversation]:
    """The full dataset for ``seed`` (deterministic)."""
    return Generator(seed).generate(count)


def stratified_subset(
    conversations: Sequence[Conversation], size: int = SUBSET_SIZE, seed: int = SUBSET_SEED
) -> list[Conversation]:
    """``size`` conversations, proportional per complexity × workflow, in dataset order."""
    if size >= len(conversations):
        return list(conversations)
    order = {c: i for i, (c, _) in enumerate(COMPLEXITY_SHARES)}
    worder = {w: i for i, w in enumerate(WORKFLOWS)}
    strata: dict[tuple[int, int], list[int]] = {}
    for index, conv in enumerate(conversations):
        key = (order[conv.complexity], worder[conv.workflow])
        strata.setdefault(key, []).append(index)
    keys = sorted(strata)
    shares = [(str(k), len(strata[k]) / len(conversations)) for k in keys]
    quotas = dict(_counts(size, shares))
    rng = random.Random(seed)
    chosen: list[int] = []
    for k in keys:
        chosen += rng.sample(strata[k], quotas[str(k)])
    return [conversations[i] for i in sorted(chosen)]


def write_jsonl(path: Path, conversations: Sequence[Conversation]) -> None:
    text = "".join(dump_conversation(c) + "\n" for c in conversations)
    path.write_text(text, encoding="utf-8")


@dataclass
class GenerateReport:
    full: Path
    subset: Path
    conversations: list[Conversation]
    subset_conversations: list[Conversation]
    seconds: float
    attempts: int


def write_dataset(
    output: str | Path, seed: int = DEFAULT_SEED, count: int = DEFAULT_COUNT
) -> GenerateReport:
    """Generate, validate and write ``conversations.jsonl`` and ``conversations_400.jsonl``."""
    started = time.perf_counter()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    generator = Generator(seed)
    conversations = generator.generate(count)
    subset = stratified_subset(conversations, min(SUBSET_SIZE, count))
    full_path, subset_path = out / FULL_FILE, out / SUBSET_FILE
    write_jsonl(full_path, conversations)
    write_jsonl(subset_path, subset)
    return GenerateReport(
        full_path,
        subset_path,
        conversations,
        subset,
        time.perf_counter() - started,
        generator.attempts,
    )
