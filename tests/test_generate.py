"""``crmbench generate``: reproducible, well-mixed, validated by execution.

The shipped files in ``cases/`` must be exactly what the generator writes; the shipped
set must have the promised shape (complexity mix, tool coverage, refusals, workflows,
no duplicates, natural words without ids or placeholders, no stock phrases, replies
that measure the work), and the replay agent must pass every conversation while the
noop agent passes none.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pytest_crmbench.agents.scripted import NoopAgent, ReplayAgent
from pytest_crmbench.backends import open_memory_store
from pytest_crmbench.cli import main
from pytest_crmbench.crm.catalog import AGENT_TOOLS
from pytest_crmbench.dataset import load_dataset
from pytest_crmbench.dataset.facts import fact_present, numbers_in
from pytest_crmbench.dataset.workflows import WORKFLOWS
from pytest_crmbench.generate import (
    FULL_FILE,
    SUBSET_FILE,
    dataset_statistics,
    stratified_subset,
    write_dataset,
)
from pytest_crmbench.generate import phrasing as P
from pytest_crmbench.generate import replies as R
from pytest_crmbench.generate.builder import WRITES, local_id
from pytest_crmbench.lint import stock_phrases
from pytest_crmbench.locations import project_dir
from pytest_crmbench.runner import Runner

TARGET = {"simple": 0.23, "medium": 0.52, "complex": 0.25}
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
LEFTOVER_RE = re.compile(r"\{\{|\{[A-Za-z_]\w*\}|<[A-Za-z_]+>|<|>|\[[^\]]*\|")


@pytest.fixture(scope="module")
def cases_dir() -> Path:
    return project_dir("cases")


@pytest.fixture(scope="module")
def shipped(cases_dir: Path) -> Any:
    return load_dataset(cases_dir / FULL_FILE)


@pytest.fixture(scope="module")
def subset(cases_dir: Path) -> Any:
    return load_dataset(cases_dir / SUBSET_FILE)


# == reproducibility ===============================================================
def test_cli_reproduces_the_shipped_files(tmp_path: Path, cases_dir: Path, capsys: Any) -> None:
    assert main(["generate", "--output", str(tmp_path)]) == 0
    for name in (FULL_FILE, SUBSET_FILE):
        assert (tmp_path / name).read_bytes() == (cases_dir / name).read_bytes(), name
    printed = capsys.readouterr().out
    assert "distinct" in printed and "create_new_opportunity" in printed


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    a = write_dataset(tmp_path / "a", seed=7, count=60)
    b = write_dataset(tmp_path / "b", seed=7, count=60)
    c = write_dataset(tmp_path / "c", seed=8, count=60)
    assert a.full.read_bytes() == b.full.read_bytes()
    assert a.subset.read_bytes() == b.subset.read_bytes()
    assert a.full.read_bytes() != c.full.read_bytes()
    assert len(load_dataset(a.full).conversations) == 60


def test_generate_rejects_a_bad_count(tmp_path: Path) -> None:
    assert main(["generate", "--output", str(tmp_path), "--count", "0"]) == 2


# == the shipped set ===============================================================
def test_size_and_complexity_mix(shipped: Any) -> None:
    convs = shipped.conversations
    assert len(convs) >= 1200
    counts = Counter(c.complexity for c in convs)
    for level, share in TARGET.items():
        assert abs(counts[level] / len(convs) - share) <= 0.02, level


def test_every_tool_is_measured(shipped: Any) -> None:
    turns: Counter[str] = Counter()
    for conv in shipped.conversations:
        for turn in conv.turns:
            turns.update({c.tool for c in turn.expected_calls})
    for tool in AGENT_TOOLS:
        assert turns[tool.name] >= 15, (tool.name, turns[tool.name])
    # Weighted by production frequencies: the frequent tasks dominate the rare ones.
    assert turns["create_new_opportunity"] > 10 * turns["quote_prefixes"]
    assert turns["modify_opportunity"] > 5 * turns["delete_quote"]


def test_refusals_workflows_and_tags(shipped: Any) -> None:
    convs = shipped.conversations
    refusing = [c for c in convs if c.has_failure_turn]
    assert 0.13 <= len(refusing) / len(convs) <= 0.17
    kinds = Counter(t.error_contains for c in refusing for t in c.turns if t.expect == "failure")
    assert len(kinds) >= 10  # spread over many rules, none dominating
    assert max(kinds.values()) <= 0.2 * sum(kinds.values())
    assert set(Counter(c.workflow for c in convs)) == set(WORKFLOWS)
    for conv in convs:
        assert ("refusal" in conv.tags) == conv.has_failure_turn
        assert set(conv.tools) <= set(conv.tags)
        assert conv.title == re.sub(r"[^a-z0-9]+", "-", conv.workflow.lower()) + (
            "-" + conv.complexity
        )


def test_ids_dates_and_own_records(shipped: Any) -> None:
    convs = shipped.conversations
    assert [c.id for c in convs] == [f"CONV-{i:04d}" for i in range(1, len(convs) + 1)]
    for conv in convs:
        assert conv.reference_date.isoformat() == "2025-10-01"
        for table, records in conv.seed.items():
            key = {"opportunities": "opportunity_id"}.get(table, table[:-1] + "_id")
            for i, record in enumerate(records, 1):
                assert record[key] == local_id(42, conv.id, table, i)
                assert uuid.UUID(record[key]).version == 5


def test_no_duplicates_and_natural_words(shipped: Any) -> None:
    convs = shipped.conversations
    signatures = {
        json.dumps([[t.user, [c.model_dump() for c in t.expected_calls]] for t in c.turns])
        for c in convs
    }
    assert len(signatures) == len(convs)
    users = [t.user for c in convs for t in c.turns]
    assert len(set(users)) >= 5000
    for text in users:
        assert not LEFTOVER_RE.search(text), text
        assert not UUID_RE.search(text), text  # ids are looked up, never spoken
        assert text[:1].isupper() or text[:1] in "'\"", text


def test_medium_and_complex_conversations_chain_turns(shipped: Any) -> None:
    longer = [c for c in shipped.conversations if c.complexity != "simple"]
    chained = [c for c in longer if "cross-turn" in c.tags]
    assert len(chained) / len(longer) >= 0.5
    assert sum("disambiguation" in c.tags for c in shipped.conversations) >= 100
    for conv in chained:
        text = json.dumps([t.model_dump() for t in conv.turns])
        assert "{{turn_" in text


def test_statistics(shipped: Any) -> None:
    stats = dataset_statistics(shipped.conversations)
    assert stats["conversations"] == len(shipped.conversations)
    assert sum(stats["complexity"].values()) == stats["conversations"]
    assert sum(stats["workflow"].values()) == stats["conversations"]
    assert set(stats["tools"]) == {t.name for t in AGENT_TOOLS}
    assert 0.13 <= stats["refusal_share"] <= 0.17
    assert stats["distinct_utterances"] <= stats["utterances"] == stats["turns"]


def test_replay_passes_every_shipped_conversation_and_noop_none(shipped: Any, world: Any) -> None:
    runner = Runner(open_memory_store(world), world)
    failures = []
    for conv in shipped.conversations:
        if not runner.run(conv, ReplayAgent())["passed"]:
            failures.append(conv.id)
        noop = runner.run(conv, NoopAgent())
        assert not noop["passed"] and noop["turns_passed"] == 0, conv.id
    assert failures == []


def test_replies_measure_the_work(shipped: Any) -> None:
    """Read turns name records to leave out, refusals their reason; rubrics where the
    quality of the answer matters (summaries, comparisons, details views)."""
    turns = [t for c in shipped.conversations for t in c.turns]
    judged = {"summarize_opportunities", "compare_quotes", "compare_quote_details"}
    judged |= {"view_opportunity_details", "opportunity_details", "quote_details"}
    rubrics = 0
    for turn in turns:
        tools = {c.tool for c in turn.expected_calls}
        facts, avoid = turn.reply.must_mention, turn.reply.must_not_mention
        if turn.expect == "failure":
            assert facts and not avoid, turn.user
            continue
        read = not tools & WRITES
        if read and tools != {"quote_prefixes"}:
            assert avoid, turn.user
            assert not any(fact_present(f, turn.user) for f in facts), turn.user
            assert any(not R.guessable(f) for f in facts), turn.user
        for value in avoid:
            assert not fact_present(value, turn.user), (turn.user, value)
            assert not any(fact_present(value, f) or fact_present(f, value) for f in facts)
        if read and tools & judged:
            assert turn.reply.rubric, turn.user
        rubrics += bool(turn.reply.rubric)
    assert rubrics >= 0.05 * len(turns)


@pytest.mark.parametrize("name", [FULL_FILE, SUBSET_FILE])
def test_no_stock_openers_or_closers(cases_dir: Path, name: str) -> None:
    users = [t.user for c in load_dataset(cases_dir / name).conversations for t in c.turns]
    assert stock_phrases(users) == []
    assert "Cool, thanks!" in " ".join(users)  # still said, just not on every turn


def test_reason_facts_and_note_phrases() -> None:
    assert R.reason_fact("Close date must be today or in the future.") == "close date"
    assert R.reason_fact("Opportunity not found with ID 'x'.") == "opportunity"
    assert R.reason_fact("Document file extension '.EXE' is not supported (allowed: pdf).") == (
        "exe"
    )
    with pytest.raises(ValueError):
        R.reason_fact("Something else went wrong.")
    assert R.guessable("3") and R.guessable("10%") and not R.guessable("11")
    assert not R.guessable("Negotiation") and not R.guessable("85,000")
    note = "Verbal commit from Andre Williams; paperwork expected end of January."
    assert R.note_phrase(note) == "Verbal commit from Andre"
    assert R.note_phrase(note, ["Verbal commit from Andre, again"]) == (
        "Verbal commit from Andre Williams"
    )
    assert R.note_phrase("Ok.") == "Ok."
    kept = R.clean_avoid(
        [
            *("Acme – Pilot", "Acme – Pilot (Clone)", "Zephyr", "Nimbus – Suite"),
            *("Acme Analytics", "Zephyr – Pilot", "Bluefin – Portal", "Orchard – App"),
        ],
        results='[{"name": "Acme – Pilot (Clone)"}]',
        user="What about the Zephyr deal?",
        facts=["Acme"],
        earlier=["Bluefin – Portal is new."],
    )
    # Inside a result, a result, the user's words, holding a fact, said before; then 3.
    assert kept == ["Nimbus – Suite", "Zephyr – Pilot", "Orchard – App"]


@pytest.mark.postgres
def test_replay_passes_a_sample_on_postgres(shipped: Any, world: Any, seeded_store: Any) -> None:
    runner = Runner(seeded_store("postgres"), world)
    sample = shipped.conversations[:: len(shipped.conversations) // 50][:50]
    for conv in sample:
        assert runner.run(conv, ReplayAgent())["passed"], conv.id


# == the 400 subset ================================================================
def test_subset_is_a_stratified_part_of_the_full_set(
    cases_dir: Path, shipped: Any, subset: Any
) -> None:
    convs = subset.conversations
    assert len(convs) == 400
    full_lines = set((cases_dir / FULL_FILE).read_text("utf-8").splitlines())
    for line in (cases_dir / SUBSET_FILE).read_text("utf-8").splitlines():
        assert line in full_lines
    counts = Counter(c.complexity for c in convs)
    for level, share in TARGET.items():
        assert abs(counts[level] / 400 - share) <= 0.03, level
    strata_full = Counter((c.complexity, c.workflow) for c in shipped.conversations)
    strata_sub = Counter((c.complexity, c.workflow) for c in convs)
    scale = 400 / len(shipped.conversations)
    for key, n in strata_full.items():
        assert abs(strata_sub[key] - n * scale) < 1, key
    order = [c.id for c in convs]
    assert order == sorted(order)


def test_stratified_subset_is_deterministic(shipped: Any) -> None:
    a = stratified_subset(shipped.conversations, 100, seed=42)
    b = stratified_subset(shipped.conversations, 100, seed=42)
    c = stratified_subset(shipped.conversations, 100, seed=43)
    assert [x.id for x in a] == [x.id for x in b] != [x.id for x in c]
    assert len(a) == 100


# == phrasing ======================================================================
@pytest.mark.parametrize("amount", [85_000.0, 12_400.0, 1_875_000.0, 38_500.0, 9_500_000.0])
def test_amounts_as_users_write_them_mean_the_same_number(amount: float) -> None:
    import random

    rng = random.Random(1)
    for _ in range(40):
        said = P.money(rng, amount)
        if not any(ch.isdigit() for ch in said):
            continue  # spelled out
        assert amount in numbers_in(said), said
    assert fact_present(P.money_fact(amount), f"Done. {P.money_fact(amount)}")


def test_spelled_amounts() -> None:
    assert P.spell_amount(85_000) == "eighty-five thousand"
    assert P.spell_amount(120_000) == "one hundred twenty thousand"
    assert P.spell_amount(2_000_000) == "two million"
    assert P.spell_amount(1_500_000) == "one and a half million"
    assert P.spell_amount(85_500) is None
    assert P.spell_amount(1_234_000) is None


def test_templates_expand_without_leftovers() -> None:
    import random

    rng = random.Random(3)
    text = P.say(rng, "[log|create] a [deal|[new ]opportunity] for <c>[, please|]", c="Acme")
    assert not LEFTOVER_RE.search(text) and "Acme" in text
    said = P.request(rng, "!we won the deal! Mark it Closed-Won", first=True)
    assert said.lower().endswith("we won the deal! mark it closed-won.") and "you" not in said
    said = P.request(rng, "add a note: 'Call back.'", first=True)
    assert "'Call back.'" in said and not said.endswith(".'.")
