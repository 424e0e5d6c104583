"""Fact matching: numbers, amounts, dates and text in the forms people write."""

from __future__ import annotations

import pytest

from pytest_crmbench.dataset.facts import fact_present


@pytest.mark.parametrize(
    ("fact", "reply"),
    [
        ("85000", "The deal is worth $85,000."),
        ("85,000", "Amount: 85000"),
        ("85000", "about $85K"),
        ("1500000", "$1.5M total"),
        ("38,500", "It is 38.5k"),
        ("6", "You have 6 deals in negotiation."),
        ("2025-12-15", "closing on December 15, 2025"),
        ("2025-12-15", "closing Dec 15th, 2025"),
        ("2025-12-15", "closing 2025-12-15"),
        ("2025-12-15", "closing 12/15/2025"),
        ("Acme Corporation – Data Platform Renewal", "acme corporation - data platform  renewal"),
        ("Proposal", "It's in the PROPOSAL stage"),
    ],
)
def test_fact_present(fact: str, reply: str) -> None:
    assert fact_present(fact, reply)


@pytest.mark.parametrize(
    ("fact", "reply"),
    [
        ("85000", "The deal is worth $58,000."),
        ("85000", "850000 dollars"),
        ("6", "You have 16 deals."),
        ("2025-12-15", "closing December 16, 2025"),
        ("Proposal", "It is in negotiation"),
        ("Linda", "Found David Chen"),
    ],
)
def test_fact_absent(fact: str, reply: str) -> None:
    assert not fact_present(fact, reply)
