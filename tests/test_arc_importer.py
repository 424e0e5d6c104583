"""The upstream (Arc) importer: conversion, defects, rendering, the empty world.

Fixtures: ``tests/arc_fixtures/arc_conversations.jsonl`` — ten invented conversations in
the upstream format (three clean, one per defect kind); lines made up here for the
malformed and hostile cases.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pytest_crmbench.agents.loading import make_agent
from pytest_crmbench.backends import open_memory_store
from pytest_crmbench.crm.clock import DeterministicIds
from pytest_crmbench.dataset import DatasetError, detect_format, load_dataset
from pytest_crmbench.dataset.arc import (
    ARC_REFERENCE_DATE,
    ARC_TAG,
    complexity_for,
    convert_arc,
    empty_world,
    is_arc,
    project_id,
    workflow_for,
)
from pytest_crmbench.dataset.defects import KINDS, skip_reason
from pytest_crmbench.dataset.loader import file_format
from pytest_crmbench.dataset.stated import is_stated, spelled_numbers, unstated_values
from pytest_crmbench.runner.arc import ArcRunner
from pytest_crmbench.runner.runner import DatasetDefect, Runner

FIXTURES = Path(__file__).resolve().parent / "arc_fixtures"
ARC_FILE = FIXTURES / "arc_conversations.jsonl"

C1 = "6f1c2a9e-3b4d-4e8f-9a10-2b3c4d5e6f70"
O1 = "7d2e4f60-8a1b-4c3d-9e5f-60718293a4b5"
Q1 = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"

CLEAN = ("ARC-CLEAN-SEARCH_simple_01", "ARC-CLEAN-QUOTE_medium_02", "ARC-CLEAN-CONTACT_complex_03")
EXPECTED_KINDS = {
    "ARC-PLACEHOLDER_simple_04": {"placeholder", "unstated-value"},
    "ARC-UNKNOWN-TOOL_simple_05": {"unknown-tool"},
    "ARC-UNKNOWN-ARG_simple_06": {"unknown-argument"},
    "ARC-UNSTATED_simple_07": {"unstated-value"},
    "ARC-FAILING-CALL_simple_08": {"reference-call-failed"},
    "ARC-EMPTY-SEARCH_simple_09": {"empty-search"},
    "ARC-BAD-SEED_simple_10": {"invalid-seed"},
}


def arc_lines() -> list[dict[str, Any]]:
    return [json.loads(line) for line in ARC_FILE.read_text(encoding="utf-8").splitlines()]


def line(**overrides: Any) -> dict[str, Any]:
    """A small valid upstream line (one clean turn), with keys replaced."""
    obj: dict[str, Any] = {
        "conversation_id": "T-1",
        "workflow_category": "Client Management",
        "complexity_level": "simple",
        "turns": [
            {
                "turn_id": 1,
                "user_utterance": "Find the client Borealis Freight",
                "expected_tool": "client_search",
                "expected_args": {"criteria": {"name": "Borealis Freight"}},
                "expect_success": True,
            }
        ],
        "initial_entities": {
            "seed_data": {
                "Client": {C1: {"name": "Borealis Freight", "email": "ops@borealis.example"}}
            }
        },
    }
    obj.update(overrides)
    return obj


@pytest.fixture(scope="module")
def dataset() -> Any:
    return load_dataset(ARC_FILE)


# == detection and loading =============================================================
def test_an_upstream_file_is_detected_by_its_first_line_and_imported(dataset: Any) -> None:
    assert file_format(ARC_FILE.read_bytes()) == "arc"
    assert detect_format(arc_lines()[0]) == "arc"
    ids = [c.id for c in dataset.conversations]
    assert ids == [*CLEAN, *EXPECTED_KINDS]
    assert all(is_arc(c) and ARC_TAG in c.tags for c in dataset.conversations)
    assert set(dataset.defects) == set(ids)  # every imported conversation has an entry
    assert dataset.locations["ARC-BAD-SEED_simple_10"] == (ARC_FILE, 10)
    # the upstream id is kept when the project's id alphabet changed it
    assert "arc-id:ARC-CLEAN SEARCH_simple_01" in dataset.by_id[CLEAN[0]].tags


def test_clean_conversations_have_no_blocking_defect_and_validate(dataset: Any) -> None:
    from pytest_crmbench.dataset.model import Conversation

    for cid in CLEAN:
        assert not [d for d in dataset.defects[cid] if d.blocking], dataset.defects[cid]
        conv = dataset.by_id[cid]
        Conversation.model_validate(conv.model_dump(mode="json"))  # a fully valid model


@pytest.mark.parametrize(("cid", "kinds"), EXPECTED_KINDS.items())
def test_each_defect_kind_is_found(dataset: Any, cid: str, kinds: set[str]) -> None:
    found = {d.kind for d in dataset.defects[cid]}
    assert found == kinds
    assert all(k in KINDS for k in found)
    assert skip_reason(dataset.defects[cid]).startswith("arc defect: ")


def test_defect_details_name_the_problem(dataset: Any) -> None:
    details = {cid: " | ".join(str(d) for d in ds) for cid, ds in dataset.defects.items()}
    assert "'{stage}'" in details["ARC-PLACEHOLDER_simple_04"]
    assert "'{{opportunity_name}}'" in details["ARC-PLACEHOLDER_simple_04"]
    assert "'create_invoice'" in details["ARC-UNKNOWN-TOOL_simple_05"]
    assert "'document_url'" in details["ARC-UNKNOWN-ARG_simple_06"]
    assert "probability=65" in details["ARC-UNSTATED_simple_07"]
    assert "Quote not found" in details["ARC-FAILING-CALL_simple_08"]
    assert "no such seeded Client" in details["ARC-BAD-SEED_simple_10"]


# == conversion ========================================================================
def test_partial_seed_records_get_defaults(dataset: Any) -> None:
    conv = dataset.by_id[CLEAN[0]]
    assert conv.reference_date == ARC_REFERENCE_DATE
    client = next(r for r in conv.seed["clients"] if r["client_id"] == C1)
    assert client["status"] == "Active"  # missing upstream
    assert client["phone"] is None and client["owner"] is None
    assert client["created_date"] == "2025-01-01T09:00:00+00:00"  # the reference date
    prospect = next(r for r in conv.seed["clients"] if r["client_id"] != C1)
    assert prospect["status"] == "Prospect"  # given upstream: kept
    opp = next(r for r in conv.seed["opportunities"] if r["opportunity_id"] == O1)
    assert opp["stage"] == "Qualification" and opp["probability"] is None
    quote = next(r for r in conv.seed["quotes"] if r["quote_id"] == Q1)
    assert quote["status"] == "Draft"
    # seeding order: the CRM's load order (clients before contacts before opportunities…)
    assert list(conv.seed) == ["clients", "contacts", "opportunities", "quotes"]


def test_reference_date_follows_a_later_seeded_timestamp() -> None:
    obj = line()
    client = obj["initial_entities"]["seed_data"]["Client"][C1]
    client["created_date"] = "2026-03-04T10:00:00+00:00"
    item = convert_arc(obj)
    assert item.conversation.reference_date == date(2026, 3, 4)
    assert not item.defects


def test_expected_calls_take_the_catalogs_shape_and_keep_references(dataset: Any) -> None:
    conv = dataset.by_id["ARC-CLEAN-QUOTE_medium_02"]
    calls = [t.expected_calls[0] for t in conv.turns]
    assert calls[0].args == {"client_id": C1}  # criteria → plain arguments
    assert calls[1].args == {
        "opportunity_id": "{{turn_1.opportunity_id}}",
        "amount": 48500,
        "status": "Draft",
    }
    assert calls[3].args == {"quote_id": "{{turn_2.quote_id}}", "updates": {"status": "Sent"}}


def test_turn_references_in_utterances_are_rendered_from_the_reference_run(
    dataset: Any,
) -> None:
    conv = dataset.by_id["ARC-CLEAN-QUOTE_medium_02"]
    # turn 1 returned a list: "a list result means its first element"
    assert conv.turns[1].user.endswith(f"opportunity {O1}")
    # turn 2 created a quote: the id the agent run's id factory gives the first record
    quote_id = DeterministicIds(conv.id).new_id()
    assert conv.turns[2].user == f"Show me quote {quote_id}"
    assert conv.turns[3].user == f"Please set quote {quote_id} to Sent"
    assert "{{" not in " ".join(t.user for t in conv.turns)


def test_reply_facts_come_from_the_reference_results(dataset: Any) -> None:
    search = dataset.by_id[CLEAN[0]]
    assert [t.reply.must_mention for t in search.turns] == [
        ["Borealis Freight"],
        ["Fleet Telematics Rollout"],
        ["Imaging Suite Upgrade"],
    ]
    quote = dataset.by_id["ARC-CLEAN-QUOTE_medium_02"]
    assert quote.turns[0].reply.must_mention == ["Fleet Telematics Rollout", "Cold Chain Sensors"]
    # never the upstream reply text (which holds generation-time ids and timestamps)
    facts = " ".join(
        f for c in dataset.conversations for t in c.turns for f in t.reply.must_mention
    )
    assert "00000000-0000-0000-0000-000000000000" not in facts
    assert "2025-11-12" not in facts


def test_complexity_is_recomputed_and_the_upstream_value_kept_in_tags(dataset: Any) -> None:
    conv = dataset.by_id["ARC-CLEAN-CONTACT_complex_03"]
    assert conv.complexity == "simple"  # two turns
    assert "arc-complexity:complex" in conv.tags
    mismatch = [d for d in dataset.defects[conv.id] if d.kind == "complexity-mismatch"]
    assert len(mismatch) == 1 and not mismatch[0].blocking
    assert "'complex'" in mismatch[0].detail
    assert [complexity_for(n) for n in (1, 3, 4, 6, 7, 10, 12)] == [
        "simple",
        "simple",
        "medium",
        "medium",
        "complex",
        "complex",
        "complex",
    ]


def test_workflow_comes_from_the_category_or_else_the_tools(dataset: Any) -> None:
    assert dataset.by_id[CLEAN[0]].workflow == "Client Management"
    assert dataset.by_id["ARC-CLEAN-CONTACT_complex_03"].workflow == "Contact Management"
    assert workflow_for("General", ["opportunity_search", "create_contract"]) == (
        "Contract Management"
    )
    assert workflow_for("", ["quote_search", "quote_details", "client_search"]) == (
        "Quote Management"
    )
    assert workflow_for("notes & collaboration", []) == "Notes & Collaboration"
    assert workflow_for("Unheard Of", []) == "Opportunity Management"


def test_ids_are_made_safe_and_duplicates_are_defects(tmp_path: Path) -> None:
    assert project_id("SKEL-CREATE NEW QUOTE_medium_0") == "SKEL-CREATE-NEW-QUOTE_medium_0"
    first = line(conversation_id="Same id")
    again = line(conversation_id="Same id")
    other = line(conversation_id="Same/id")  # another upstream id, same safe id
    path = tmp_path / "dup.jsonl"
    path.write_text("\n".join(json.dumps(o) for o in (first, again, other)) + "\n")
    ds = load_dataset(path)
    assert [c.id for c in ds.conversations] == ["Same-id", "Same-id-2", "Same-id-3"]
    assert [d.kind for d in ds.defects["Same-id-2"]] == ["duplicate-id"]
    assert ds.defects["Same-id"] == () and ds.defects["Same-id-3"] == ()


def test_broken_references_in_arguments_are_defects() -> None:
    obj = line()
    obj["turns"].append(
        {
            "turn_id": 2,
            "user_utterance": "Show me that deal",
            "expected_tool": "view_opportunity_details",
            "expected_args": {"opportunity_id": "{{turn_3.opportunity_id}}"},
        }
    )
    item = convert_arc(obj)
    assert [d.kind for d in item.defects] == ["broken-reference"]
    obj["turns"][1]["expected_args"] = {"opportunity_id": "{{turn_1.opportunity_id}}"}
    kinds = [d.kind for d in convert_arc(obj).defects]  # client_search results lack the field
    assert kinds == ["broken-reference"]


def test_failure_turns_are_checked_on_the_reference_run() -> None:
    obj = line()
    obj["turns"][0].update(
        expected_tool="cancel_quote",
        user_utterance="Cancel quote 55555555-4444-4333-8222-111111111111",
        expected_args={"quote_id": "55555555-4444-4333-8222-111111111111"},
        expect_success=False,
        expected_error_substring="not found",
    )
    item = convert_arc(obj)
    assert not item.defects
    turn = item.conversation.turns[0]
    assert (turn.expect, turn.error_contains) == ("failure", "not found")
    obj["turns"][0]["expected_error_substring"] = "is closed"
    assert [d.kind for d in convert_arc(obj).defects] == ["reference-call-failed"]


def test_more_than_ten_turns_is_a_defect_and_still_collected() -> None:
    obj = line()
    obj["turns"] = [dict(obj["turns"][0], turn_id=n) for n in range(1, 12)]
    item = convert_arc(obj)
    assert [d.kind for d in item.blocking] == ["too-many-turns"]
    assert item.conversation.complexity == "complex"
    assert len(item.conversation.turns) == 11


def test_malformed_lines_are_collection_errors_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps(line())
        + "\n\n"
        + '{"conversation_id": "x", "turns": [\n'
        + "[1, 2]\n"
        + json.dumps({"conversation_id": " ", "turns": [{"user_utterance": "hi"}]})
        + "\n"
        + json.dumps({"conversation_id": "y", "turns": [{"expected_tool": "x"}]})
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    text = str(info.value)
    assert f"{path}:3: invalid JSON" in text
    assert f"{path}:4: expected a JSON object" in text
    assert f"{path}:5: conversation_id: missing or not a non-blank string (a line of" in text
    assert f"{path}:6: turns[0].user_utterance: missing (a line of the upstream" in text
    assert f"{path}:1" not in text


def _mutations(seed: int, count: int) -> Iterator[dict[str, Any]]:
    hostile: list[Any] = [
        None,
        0,
        -5,
        1e308,
        10**40,
        "",
        " ",
        "x" * 3000,
        [],
        {},
        [1, {}],
        {"a": {"b": []}},
        True,
        "{{turn_0.x}}",
        "{{turn_9.y}}",
        "{{turn_1.}}",
        "{x}",
        "\x00",
        "\ud800",
        "2025-13-45",
        "{{turn_1.calls[5].result.x}}",
    ]
    rng = random.Random(seed)
    base = arc_lines()[: len(CLEAN)]
    for i in range(count):
        obj = json.loads(json.dumps(rng.choice(base)))
        obj["conversation_id"] = f"H-{i}"
        for _ in range(rng.randint(0, 3)):
            turn = rng.choice(obj["turns"])
            value = rng.choice(hostile)
            where = rng.randrange(7)
            if where == 0:
                turn["expected_tool"] = value
            elif where == 1:
                turn["expected_args"] = value
            elif where == 2 and isinstance(turn.get("expected_args"), dict):
                key = rng.choice(["criteria", "name", "opportunity_id", "amount", "updates", "zz"])
                turn["expected_args"][key] = value
            elif where == 3:
                turn["user_utterance"] = value
            elif where == 4 and isinstance(obj.get("initial_entities"), dict):
                seed_data = obj["initial_entities"]["seed_data"]
                entity = rng.choice(["Client", "Contact", "Opportunity", "Quote", "Widget"])
                if rng.random() < 0.5 or not isinstance(seed_data.get(entity), dict):
                    seed_data[entity] = value
                elif seed_data[entity]:
                    record = seed_data[entity][rng.choice(list(seed_data[entity]))]
                    field = rng.choice(["name", "email", "amount", "client_id", "created_date"])
                    record[field] = value
            elif where == 5:
                turn["turn_id"] = value
                turn["expect_success"] = rng.choice([False, True, None])
                turn["expected_error_substring"] = value
            else:
                obj[rng.choice(["complexity_level", "workflow_category", "initial_entities"])] = (
                    value
                )
        yield obj


def test_hostile_lines_never_crash_the_import_or_a_forced_run() -> None:
    """Whatever a line holds: the import gives a conversation (clean or with defects);
    clean ones pass with replay on the empty world; even defective ones, forced to run,
    end as a verdict or a dataset defect."""
    world = empty_world()
    runner = ArcRunner(Runner(open_memory_store(world), world), lambda w: open_memory_store(w))
    clean = defective = 0
    for obj in _mutations(seed=7, count=400):
        item = convert_arc(obj)
        assert not any("import failed" in d.detail for d in item.defects), item.defects
        try:
            result = runner.run(item.conversation, make_agent("replay"))
        except DatasetDefect:
            assert item.blocking
            defective += 1
            continue
        if not item.blocking:
            clean += 1
            assert result["passed"], (item.conversation.id, result["first_failure"])
        else:
            defective += 1
    assert clean > 50 and defective > 150, (clean, defective)


# == running ===========================================================================
def test_arc_runner_runs_imported_conversations_on_an_empty_world(dataset: Any) -> None:
    from pytest_crmbench.crm.seed import load_seed_world

    world = load_seed_world()
    opened: list[Any] = []

    def open_store(w: Any) -> Any:
        opened.append(w)
        return open_memory_store(w)

    runner = ArcRunner(Runner(open_memory_store(world), world), open_store)
    conv = dataset.by_id[CLEAN[0]]
    arc_runner = runner.runner_for(conv)
    assert arc_runner is not runner.base and arc_runner.options is runner.base.options
    assert sum(arc_runner.world.counts().values()) == 0
    assert len(opened) == 1 and runner.runner_for(conv) is arc_runner  # opened once
    result = runner.run(conv, make_agent("replay"))
    assert result["passed"]
    stage_search = result["turns"][2]["calls"][0]
    assert len(stage_search["result"]) == 1  # the seed world holds more Negotiation deals


def test_replay_passes_every_clean_imported_conversation_and_noop_none(dataset: Any) -> None:
    world = empty_world()
    runner = Runner(open_memory_store(world), world)
    for cid in CLEAN:
        conv = dataset.by_id[cid]
        assert runner.run(conv, make_agent("replay"))["passed"], cid
        assert not runner.run(conv, make_agent("noop"))["passed"], cid


# == stated values =====================================================================
@pytest.mark.parametrize(
    ("value", "said"),
    [
        (85000, "make it $85K"),
        (85000, "make it 85,000 dollars"),
        (85000, "eighty-five thousand, please"),
        (335000, "three hundred thirty-five thousand dollars"),
        (2500000, "two and a half million"),
        (25, "25% probability"),
        ("2025-11-30", "close it on 30 November 2025"),
        ("2025-11-30", "expected to close Nov 30"),
        ("Closed-Won", "mark it closed won"),
        ("Acme Corp.", "the acme corp account"),
    ],
)
def test_values_are_stated_in_any_written_form(value: Any, said: str) -> None:
    assert is_stated(value, said, today=date(2025, 10, 1))


def test_unstated_values_skip_ids_and_references_and_read_searches_loosely() -> None:
    args = {
        "opportunity_id": "{{turn_1.opportunity_id}}",
        "updates": {"stage": "Negotiation", "probability": 40},
    }
    assert unstated_values("modify_opportunity", args, "move it to Negotiation") == [
        ("updates.probability", 40)
    ]
    assert unstated_values("client_search", {"client_id": C1}, "that one") == []
    search = {"name": "Acme Analytics – Data Platform Renewal"}
    assert (
        unstated_values(
            "opportunity_search", search, "the Data Platform Renewal for Acme Analytics"
        )
        == []
    )
    assert unstated_values("create_new_opportunity", search, "the Data Platform Renewal") == [
        ("name", "Acme Analytics – Data Platform Renewal")
    ]
    assert spelled_numbers("the Acme one, three hundred thirty-five thousand") == [1.0, 335000.0]


def test_a_conversation_with_nothing_to_check_is_a_no_check_defect() -> None:
    """A search that finds nothing, and no write: any agent, noop included, would pass."""
    turn = {
        "turn_id": 1,
        "user_utterance": "Find the client Nobody Such",
        "expected_tool": "client_search",
        "expected_args": {"criteria": {"name": "Nobody Such"}},
        "expect_success": True,
    }
    item = convert_arc(line(turns=[turn]))
    assert [d.kind for d in item.defects] == ["no-check"]
    assert "any agent would pass" in skip_reason(item.defects)
    checked = convert_arc(line())  # finds Borealis Freight: its name is a fact to convey
    assert "no-check" not in {d.kind for d in checked.defects}
