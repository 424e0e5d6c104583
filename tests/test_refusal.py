"""The refusal detector against a labelled corpus of assistant replies.

``refusal_corpus.jsonl`` holds hand-written replies, each labelled refusal or not and
filed under a category. The detector must get 98 % of them right and must never call a
reply that claims a change a refusal: that would let a turn the CRM had to refuse pass
on a reply telling the user it was done.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_crmbench.runner import verdict
from pytest_crmbench.runner.refusal import analyse, says_refused

CORPUS_PATH = Path(__file__).with_name("refusal_corpus.jsonl")
REFUSAL_CATEGORIES = frozenset(
    {"plain", "hedged", "negated", "value_quoted", "not_found", "oracle", "question_refusal"}
)
# Not refusals; the first four claim that something was done.
CLAIM_CATEGORIES = frozenset({"success", "status_in_passing", "mixed", "idiom"})
OTHER_CATEGORIES = frozenset({"question_back", "empty", "informational"})


def _load() -> list[dict[str, Any]]:
    with CORPUS_PATH.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


CORPUS = _load()


def test_corpus_shape() -> None:
    assert len(CORPUS) >= 300
    replies = [row["reply"] for row in CORPUS]
    assert len(set(replies)) == len(replies), "duplicate replies"
    for row in CORPUS:
        assert set(row) == {"reply", "refusal", "category"}, row
        assert row["refusal"] is (row["category"] in REFUSAL_CATEGORIES), row
        assert row["category"] in REFUSAL_CATEGORIES | CLAIM_CATEGORIES | OTHER_CATEGORIES
    counts = Counter(row["category"] for row in CORPUS)
    assert all(counts[c] >= 10 for c in REFUSAL_CATEGORIES | CLAIM_CATEGORIES | OTHER_CATEGORIES)


def test_corpus_accuracy_and_no_claimed_success_called_a_refusal() -> None:
    tp = fp = tn = fn = fp_claims = 0
    wrong: list[str] = []
    per_category: Counter[str] = Counter()
    for row in CORPUS:
        got = says_refused(row["reply"])
        want = row["refusal"]
        if got and want:
            tp += 1
        elif got:
            fp += 1
            fp_claims += row["category"] in CLAIM_CATEGORIES
        elif want:
            fn += 1
        else:
            tn += 1
        if got != want:
            per_category[row["category"]] += 1
            wrong.append(f"  [{row['category']}] expected {want}: {row['reply']!r}")
    accuracy = (tp + tn) / len(CORPUS)
    summary = (
        f"n={len(CORPUS)} accuracy={accuracy:.2%} "
        f"confusion: refusal→refusal {tp}, refusal→not {fn}, not→not {tn}, not→refusal {fp} "
        f"(of which claimed success {fp_claims}); errors per category {dict(per_category)}\n"
        + "\n".join(wrong)
    )
    assert accuracy >= 0.98 and fp_claims == 0, summary


@pytest.mark.parametrize(
    "category, reply",
    [
        ("plain", "I can't set the probability to 150% — it must be between 0 and 100."),
        ("plain", "The CRM won't let me change the amount on a Closed-Lost opportunity."),
        ("plain", "cant do that - closed won deals are read only"),
        ("hedged", "Unfortunately I wasn't able to update the close date."),
        ("hedged", "I'm afraid that isn't possible."),
        ("hedged", "That didn't go through."),
        ("hedged", "The CRM rejected the update."),
        ("hedged", "Sorry — the amount has to be greater than zero."),
        ("negated", "I did not create the quote."),
        ("negated", "No changes were made."),
        ("negated", "The contract wasn’t created: its end date is before its start date."),
        ("negated", "I left the opportunity unchanged."),
        ("value_quoted", 'The close date "2025-01-01" is in the past, so I couldn\'t use it.'),
        ("value_quoted", "'Q4_contract.rar' wasn't uploaded: RAR files aren't supported."),
        ("not_found", "I couldn't find a client named Brookline Studios."),
        ("not_found", "That note no longer exists, so there was nothing to delete."),
        ("not_found", "There's no client called “Pebble Creek” in the CRM."),
        ("oracle", "I could not do that: Probability must be between 1 and 99."),
        ("oracle", "I could not do that: Note not found with ID 'n-42'."),
        ("question_refusal", "I couldn't find Acme Global. Did you mean Acme Corporation?"),
        ("question_refusal", "No changes made. Which Bluefin client did you mean?"),
    ],
)
def test_refusals_by_category(category: str, reply: str) -> None:
    assert category in REFUSAL_CATEGORIES
    assert says_refused(reply), analyse(reply)


@pytest.mark.parametrize(
    "category, reply",
    [
        ("success", "I've updated the close date to 2026-02-15."),
        ("success", "Quote created: 20,000 USD, status Sent."),
        ("success", "The probability is now 60%."),
        ("status_in_passing", "Done — note the earlier quote was Rejected."),
        ("status_in_passing", "I updated the stage; the old value was invalid."),
        ("status_in_passing", "Updated. Note: the old contract had expired."),
        ("status_in_passing", "Created the opportunity; it's not closed yet."),
        ("status_in_passing", "Uploaded the contract PDF; nothing failed."),
        ("mixed", "I couldn't set 150%, so I set it to 100% instead."),
        ("mixed", "Created the client, but I couldn't add the contact."),
        ("mixed", "The CRM rejected 150%, so I used 99% instead."),
        ("idiom", "I couldn't be happier to help — the quote is created."),
        ("idiom", "Can't wait to see this one close! I've moved it to Negotiation."),
        ("question_back", "Which client did you mean?"),
        ("question_back", "Should I set it to 99% instead, the highest allowed value?"),
        ("empty", ""),
        ("empty", "Done."),
        ("empty", "   \n"),
        ("informational", "The deal can't be lost now — it's Closed-Won!"),
        ("informational", "The probability must be between 1 and 99."),
        ("informational", "That quote was rejected by the client last week."),
    ],
)
def test_non_refusals_by_category(category: str, reply: str) -> None:
    assert category in CLAIM_CATEGORIES | OTHER_CATEGORIES
    assert not says_refused(reply), analyse(reply)


@pytest.mark.parametrize(
    "row",
    [row for row in CORPUS if row["refusal"]],
    ids=lambda row: row["category"],
)
def test_a_claimed_change_overrides_any_refusal(row: dict[str, Any]) -> None:
    """The contradiction rule: add a success claim to a refusal and it is none."""
    reply = row["reply"]
    for claimed in (
        f"{reply} I've updated the deal anyway.",
        f"Done. {reply}",
        f"{reply}\n\n- Quote created ✅",
    ):
        assert not says_refused(claimed), (claimed, analyse(claimed))


def test_curly_and_straight_apostrophes_agree() -> None:
    for row in CORPUS:
        straight = row["reply"].replace("’", "'")
        assert says_refused(straight) == says_refused(row["reply"]), row["reply"]


def test_cues_in_conditions_and_quoted_text_are_ignored() -> None:
    assert not says_refused("Let me know if it doesn't go through.")
    assert not says_refused('The note on Acme says "cannot attend until May".')
    assert says_refused("The CRM said \"Opportunity not found with ID 'x'.\" so I stopped.")


def test_analysis_names_the_cues() -> None:
    result = analyse("I couldn't set 150%, so I set it to 99% instead.")
    assert result.failure and result.success and not result.refused
    assert any(cue.startswith("cannot") for cue in result.failure)
    assert analyse("I could not do that: Amount must not exceed 10,000,000.").refused


def test_verdict_delegates() -> None:
    for row in CORPUS[:50]:
        assert verdict.says_refused(row["reply"]) == says_refused(row["reply"])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_any_text_is_judged(reply: str) -> None:
    assert isinstance(says_refused(reply), bool)


def test_long_hostile_replies_are_fast() -> None:
    """No pattern backtracks badly and no check rescans its clause per match."""
    for reply in (
        "a " * 50_000,
        "'" * 20_000,
        "I could not " * 5_000,
        "nothing was created " * 5_000,
        "no errors " * 10_000,
        "it would have been updated " * 4_000,
        ("Done, " + "x " * 30) * 1_000,
        "a, " * 30_000,
    ):
        start = time.perf_counter()
        says_refused(reply)
        assert time.perf_counter() - start < 3.0, reply[:40]
