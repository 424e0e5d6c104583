"""Unit tests of the turn verdict: refusals, state diffs, action match."""

from __future__ import annotations

from datetime import date

import pytest

from pytest_crmbench.runner import verdict as V
from pytest_crmbench.runner.tracking import Change


@pytest.mark.parametrize(
    "reply",
    [
        "I couldn't update it: the close date must be today or in the future.",
        "Sorry, I can't do that.",
        "The CRM rejected the change.",
        "That is not allowed for closed deals.",
        "Unable to upload: file type not supported.",
    ],
)
def test_refusal_detected(reply: str) -> None:
    assert V.says_refused(reply)


@pytest.mark.parametrize(
    "reply",
    [
        "Done.",
        "Updated the close date to 2025-09-01.",
        "",
        # status words in passing, once mistaken for refusals
        "Done — note the earlier quote was Rejected.",
        "I updated the stage; the old value was invalid",
        "The deal can't be lost now — it's Closed-Won!",
        # a different change than the one asked for
        "I couldn't set 150%, so I set it to 100% instead.",
    ],
)
def test_refusal_not_detected(reply: str) -> None:
    assert not V.says_refused(reply)


def _opp(key: str, **fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "opportunity_id": key,
        "name": "Deal",
        "client_id": "c1",
        "stage": "Prospecting",
        "amount": 100.0,
        "close_date": date(2025, 12, 1),
        "probability": None,
        "owner": None,
        "notes": None,
        "created_at": None,
    }
    base.update(fields)
    return base


def test_created_records_match_by_content_and_extend_idmap() -> None:
    expected = [Change("opportunities", "ref-1", None, _opp("ref-1"))]
    actual = [Change("opportunities", "agt-9", None, _opp("agt-9", name="  deal "))]
    idmap: V.IdMap = {}
    assert V.compare_changes(expected, actual, idmap) == []
    assert idmap == {"agt-9": "ref-1"}


def test_created_record_with_wrong_amount_names_the_field() -> None:
    expected = [Change("opportunities", "r", None, _opp("r", amount=85000.0))]
    actual = [Change("opportunities", "a", None, _opp("a", amount=58000))]
    problems = V.compare_changes(expected, actual, {})
    assert problems == ["created Opportunity 'Deal' differs: amount: 58000 ≠ 85000"]


def test_missing_and_unexpected_writes() -> None:
    expected = [Change("opportunities", "r", None, _opp("r"))]
    assert V.compare_changes(expected, [], {}) == [
        "missing write: Opportunity 'Deal' was not created"
    ]
    actual = [Change("opportunities", "a", None, _opp("a"))]
    assert V.compare_changes([], actual, {}) == ["unexpected write: created Opportunity 'Deal'"]


def test_modification_compared_through_idmap() -> None:
    before = _opp("r")
    expected = [Change("opportunities", "r", before, _opp("r", stage="Proposal"))]
    actual_ok = [Change("opportunities", "a", _opp("a"), _opp("a", stage="Proposal"))]
    assert V.compare_changes(expected, actual_ok, {"a": "r"}) == []
    actual_bad = [Change("opportunities", "a", _opp("a"), _opp("a", stage="Negotiation"))]
    (problem,) = V.compare_changes(expected, actual_bad, {"a": "r"})
    assert "modified wrongly" in problem and "stage" in problem


def test_timestamps_ignored_and_ids_of_children_mapped() -> None:
    exp = [
        Change("opportunities", "r", None, _opp("r", created_at="t1")),
        Change(
            "notes",
            "n1",
            None,
            {
                "note_id": "n1",
                "entity_type": "Opportunity",
                "entity_id": "r",
                "content": "Hi",
                "created_by": None,
                "created_at": "t1",
            },
        ),
    ]
    act = [
        Change("opportunities", "a", None, _opp("a", created_at="t2")),
        Change(
            "notes",
            "n2",
            None,
            {
                "note_id": "n2",
                "entity_type": "Opportunity",
                "entity_id": "a",
                "content": "hi",
                "created_by": None,
                "created_at": "t2",
            },
        ),
    ]
    assert V.compare_changes(exp, act, {}) == []


def test_action_match_normalises_and_maps_ids() -> None:
    expected = [{"tool": "modify_quote", "args": {"quote_id": "R1", "updates": {"amount": 5}}}]
    actual = [{"tool": "modify_quote", "args": {"quote_id": "a1", "amount": 5.0}}]
    assert V.action_matches(expected, actual, {"a1": "r1"}) == [True]
    assert V.action_matches(expected, actual, {}) == [False]


def test_action_match_ignores_calls_whose_arguments_are_not_an_object() -> None:
    """An agent may hand the handle anything (the CRM refuses it); the match must not crash."""
    expected = [{"tool": "opportunity_search", "args": {}}]
    actual = [{"tool": "opportunity_search", "args": '{"name": "Acme"'}]
    assert V.action_matches(expected, actual, {}) == [False]
    assert V.action_matches(expected, [*actual, {"tool": "opportunity_search"}], {}) == [True]
