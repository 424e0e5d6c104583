"""The golden set: its inventory, its id convention, and that it is passable.

Every sandbox case passes with its own payload, the ``replay`` oracle passes every agent
case, ``noop`` fails every agent case, and every negative scenario the spec lists is
present (by its message and, where the spec names values, by each value).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pytest_crmbench.agents.scripted import NoopAgent, ReplayAgent
from pytest_crmbench.backends import open_memory_store
from pytest_crmbench.crm import CRM, CrmError, FixedClock
from pytest_crmbench.crm.seed import SeedWorld
from pytest_crmbench.crm.store import Store
from pytest_crmbench.dataset.facts import fact_present
from pytest_crmbench.dataset.golden import GoldenCase, GoldenFile, as_conversation, load_golden
from pytest_crmbench.runner import Runner
from pytest_crmbench.runner.golden import run_sandbox

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"

PREFIX = {
    "create_new_client": "CNC",
    "create_new_opportunity": "CNO",
    "create_quote": "CQT",
    "upload_document": "UD",
    "modify_opportunity": "MOP",
    "opportunity_search": "OPS",
}

# Each negative scenario of the golden inventory, as a substring some failing case of the
# task expects.
REQUIRED_MESSAGES: dict[str, set[str]] = {
    "create_new_client": {
        "must be one of",
        "valid email address",
        "Client already exists with email",
        "requires 'email'",
        "leading or trailing whitespace",
        "must not be blank",
        "unexpected argument",
        "must be provided as a string",
    },
    "create_new_opportunity": {
        "must be one of",
        "Probability must be between 1 and 99",
        "whole-number percentage",
        "Probability must be numeric",
        "not found with ID",
        "valid ISO-8601 date",
        "today or in the future",
        "leading or trailing whitespace",
        "greater than zero",
        "must not exceed 10,000,000",
        "must be numeric",
    },
    "create_quote": {
        "must be one of",
        "greater than zero",
        "must not exceed 10,000,000",
        "must be numeric",
        "Opportunity not found with ID",
        "requires 'amount'",
        "leading or trailing whitespace",
        "Quote status must be provided as a string",
    },
    "upload_document": {
        "Document entity type must be one of",
        "requires 'entity_id'",
        "not found with ID",
        "must not be blank",
        "may only include letters, numbers, dots, underscores, and hyphens",
        "'.exe' is not supported",
        "must include an extension",
        "Quote not found with ID",
    },
    "modify_opportunity": {
        "must be one of",
        "Probability must be between 1 and 99",
        "whole-number percentage",
        "Probability must be numeric",
        "has no field named 'assigned_to'",
        "field 'opportunity_id' cannot be modified",
        "leading or trailing whitespace",
        "greater than zero",
        "must not exceed 10,000,000",
        "today or in the future",
        "valid ISO-8601 date",
        "Cannot modify closed opportunity fields",
        "Opportunity not found with ID",
    },
    "opportunity_search": {"Unknown search field"},
}

# Values the golden inventory lists one by one: each must be the value of its field in some failing
# sandbox payload of the task (``updates``/``criteria`` flattened).
REQUIRED_VALUES: dict[str, dict[str, list[Any]]] = {
    "create_new_client": {"status": ["Active ", "prospect"], "name": ["    ", 20451]},
    "create_new_opportunity": {
        "stage": ["Negotiations", " Qualification"],
        "probability": [125, 0, 100, 0.45, "fifty"],
        "close_date": ["12/15/2025", "2025-02-30", "2025-12-15T09:30:00", "2025-09-30"],
        "amount": [0, 25_000_000, "120K"],
    },
    "create_quote": {
        "status": ["draft", "InReview", "Approved ", 2],
        "amount": [-2500, 0, 15_000_000, "120K"],
    },
    "upload_document": {
        "entity_type": ["opportunity"],
        "file_name": ["   ", "plan#.pdf", "payload.exe", "signed_contract", "../../etc/passwd.pdf"],
    },
    "modify_opportunity": {
        "stage": ["Negotiations", "Negotiation "],
        "probability": [-10, 0, 42.5, "high"],
        "amount": [0, 18_000_000],
        "close_date": ["2025-09-15", "2025-11-20T17:00:00Z"],
    },
}

SANDBOX_ID = re.compile(r"^(?P<prefix>[A-Z]{2,4})-(?P<band>[01])\d{2}$")
AGENT_ID = re.compile(r"^(?P<prefix>[A-Z]{2,4})-A(?P<band>[01])\d{2}$")

Pair = tuple[GoldenFile, GoldenCase]


@pytest.fixture(scope="module")
def golden() -> list[Pair]:
    return load_golden(sorted(GOLDEN_DIR.glob("*.json")))


@pytest.fixture(scope="module")
def memory_store(world: SeedWorld) -> Store:
    return open_memory_store(world)


def _family(golden: list[Pair], family: str) -> list[Pair]:
    return [(gf, gc) for gf, gc in golden if gc.family == family]


def _flat(payload: dict[str, Any] | None) -> dict[str, Any]:
    flat = {k: v for k, v in (payload or {}).items() if k not in ("updates", "criteria")}
    for nested in ("updates", "criteria"):
        if isinstance((payload or {}).get(nested), dict):
            flat.update(payload[nested])  # type: ignore[index]
    return flat


def _typed(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value)


# == inventory ========================================================================
def test_one_file_per_task_with_reference_date(golden: list[Pair]) -> None:
    files = {gf.task: gf for gf, _ in golden}
    assert set(files) == set(PREFIX)
    for path in GOLDEN_DIR.glob("*.json"):
        assert path.stem in PREFIX, path
        assert path.read_text(encoding="utf-8").endswith("}\n"), path
    assert {gf.reference_date.isoformat() for gf in files.values()} == {"2025-10-01"}


def test_case_counts(golden: list[Pair]) -> None:
    assert len(_family(golden, "sandbox")) >= 103
    assert len(_family(golden, "agent")) >= 60


def test_ids_and_slugs_unique(golden: list[Pair]) -> None:
    ids = Counter(gc.id for _, gc in golden)
    assert [i for i, n in ids.items() if n > 1] == []
    test_ids = Counter(gc.test_id for _, gc in golden)
    assert [i for i, n in test_ids.items() if n > 1] == []
    for task in PREFIX:
        slugs = Counter(gc.slug for gf, gc in golden if gf.task == task)
        assert [s for s, n in slugs.items() if n > 1] == [], task


def test_every_task_in_both_families(golden: list[Pair]) -> None:
    for family in ("sandbox", "agent"):
        seen = {gf.task for gf, gc in golden if gc.family == family}
        assert seen == set(PREFIX), family


def test_id_convention(golden: list[Pair]) -> None:
    """Sandbox ``CNO-0xx`` happy / ``CNO-1xx`` negative; agent ``CNO-A0xx`` / ``CNO-A1xx``.

    The one negative scenario that is not an error is a malformed id in a search: it sits
    in the negative band and expects an empty result.
    """
    for gf, gc in golden:
        pattern = SANDBOX_ID if gc.family == "sandbox" else AGENT_ID
        m = pattern.fullmatch(gc.id)
        assert m is not None, gc.id
        assert m["prefix"] == PREFIX[gf.task], gc.id
        assert gc.tool == gf.task, gc.id
        if m["band"] == "0":
            assert gc.expect == "success", gc.id
        elif gc.expect == "success":
            assert gc.family == "sandbox" and gf.task == "opportunity_search", gc.id
            assert gc.expected_count == 0, gc.id


def test_sandbox_cases_are_complete(golden: list[Pair]) -> None:
    for gf, gc in _family(golden, "sandbox"):
        if gc.expect == "failure":
            assert gc.expected is None and gc.expected_count is None, gc.id
        elif gf.task == "opportunity_search":
            assert gc.expected_count is not None, gc.id
            if gc.expected_names is not None:
                assert len(gc.expected_names) == gc.expected_count, gc.id
        else:
            assert gc.expected, gc.id


def test_each_negative_scenario_is_present(golden: list[Pair]) -> None:
    for task, required in REQUIRED_MESSAGES.items():
        expected = [
            gc.error_contains or ""
            for gf, gc in golden
            if gf.task == task and gc.family == "sandbox" and gc.expect == "failure"
        ]
        missing = [r for r in sorted(required) if not any(r in m for m in expected)]
        assert missing == [], (task, missing)


def test_each_listed_negative_value_has_its_own_case(golden: list[Pair]) -> None:
    for task, fields in REQUIRED_VALUES.items():
        failing = [
            _flat(gc.payload)
            for gf, gc in golden
            if gf.task == task and gc.family == "sandbox" and gc.expect == "failure"
        ]
        for field, wanted in fields.items():
            present = {_typed(p[field]) for p in failing if field in p}
            missing = [w for w in wanted if _typed(w) not in present]
            assert missing == [], (task, field, missing)


def test_search_negatives(golden: list[Pair]) -> None:
    ops = [gc for gf, gc in golden if gf.task == "opportunity_search" and gc.family == "sandbox"]
    malformed = [
        gc
        for gc in ops
        if gc.expect == "success"
        and gc.expected_count == 0
        and any(k.endswith("_id") for k in _flat(gc.payload))
    ]
    assert malformed, "a malformed id must give an empty result, not an error"
    happy = [gc for gc in ops if gc.id[-3] == "0"]
    assert any(gc.expected_count == 0 for gc in happy), "a 'no match' case"
    assert any(
        isinstance(v, str) and v != v.lower() and v != v.upper()
        for gc in happy
        for v in _flat(gc.payload).values()
    ), "a case-insensitive case"


def test_agent_user_errors_present(golden: list[Pair]) -> None:
    wanted = {
        "create_new_client": ["Client already exists with email"],
        "create_new_opportunity": [
            "today or in the future",
            "Probability must be between 1 and 99",
            "Client not found with ID",
        ],
        "create_quote": ["Opportunity not found with ID"],
        "upload_document": ["'.exe' is not supported"],
        "modify_opportunity": [
            "Cannot modify closed opportunity fields",
            "Opportunity not found with ID",
        ],
    }
    for task, needles in wanted.items():
        messages = [
            gc.error_contains or ""
            for gf, gc in golden
            if gf.task == task and gc.family == "agent" and gc.expect == "failure"
        ]
        for needle in needles:
            assert any(needle in m for m in messages), (task, needle)


def test_agent_cases_are_user_shaped(golden: list[Pair]) -> None:
    for _, gc in _family(golden, "agent"):
        assert gc.user and gc.expected_calls, gc.id
        assert gc.expected_calls[-1]["tool"] == gc.tool, gc.id
        if gc.expect == "success":
            assert gc.must_mention, gc.id  # otherwise a silent agent could pass a search


def test_agent_refusals_name_their_reason(golden: list[Pair], world: SeedWorld) -> None:
    """Every refused agent case requires a fact of the CRM's own error (the field, the
    rule or the missing record), so "I can't do that." alone fails."""
    crm = CRM(open_memory_store(world), clock=FixedClock(world.reference_date))
    for _, gc in _family(golden, "agent"):
        if gc.expect != "failure":
            continue
        assert gc.expected_calls is not None
        last = gc.expected_calls[-1]
        with pytest.raises(CrmError) as refused:
            crm.call(last["tool"], last["args"], agent=True)
        assert any(fact_present(f, refused.value.message) for f in gc.must_mention), gc.id


def test_agent_searches_name_records_to_leave_out(golden: list[Pair], world: SeedWorld) -> None:
    """A search case lists records outside its answer that a dump of every deal shows;
    none is in the search's results, the user's words or a required fact."""
    crm = CRM(open_memory_store(world), clock=FixedClock(world.reference_date))
    searches = [gc for gf, gc in _family(golden, "agent") if gf.task == "opportunity_search"]
    assert len(searches) == 11
    every_deal = {o["name"] for o in crm.call("opportunity_search", {}, agent=True)}
    for gc in searches:
        assert gc.expected_calls is not None and gc.user is not None
        assert len(gc.must_not_mention) >= 3, gc.id
        results = json.dumps(
            [crm.call(c["tool"], c["args"], agent=True) for c in gc.expected_calls],
            ensure_ascii=False,
        )
        for name in gc.must_not_mention:
            assert name in every_deal, (gc.id, name)
            assert not fact_present(name, results), (gc.id, name)
            assert not fact_present(name, gc.user), (gc.id, name)
            assert not any(fact_present(f, name) for f in gc.must_mention), (gc.id, name)


# == passable on the memory store =====================================================
def test_every_sandbox_case_passes(golden: list[Pair], memory_store: Store) -> None:
    failures = {}
    for gf, gc in _family(golden, "sandbox"):
        result = run_sandbox(gf, gc, memory_store)
        if not result["passed"]:
            failures[gc.id] = result["problems"]
    assert failures == {}


def test_sandbox_checks_are_not_vacuous(golden: list[Pair], memory_store: Store) -> None:
    """A wrong expectation makes a sandbox case fail (the checks really compare)."""
    for gf, gc in _family(golden, "sandbox"):
        if gc.expect == "failure":
            wrong = gc.model_copy(update={"error_contains": "no CRM says this"})
        elif gc.expected:
            name = next(iter(gc.expected))
            wrong = gc.model_copy(update={"expected": {**gc.expected, name: "not-this-value"}})
        else:
            wrong = gc.model_copy(update={"expected_count": (gc.expected_count or 0) + 1})
        assert not run_sandbox(gf, wrong, memory_store)["passed"], gc.id


def test_replay_passes_and_noop_fails_every_agent_case(
    golden: list[Pair], memory_store: Store, world: SeedWorld
) -> None:
    runner = Runner(memory_store, world)
    for gf, gc in _family(golden, "agent"):
        conv = as_conversation(gf, gc)
        result = runner.run(conv, ReplayAgent())
        assert result["passed"], (gc.id, result["first_failure"])
        assert not runner.run(conv, NoopAgent())["passed"], gc.id
