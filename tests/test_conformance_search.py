"""Conformance: the six search tools (and summarize_opportunities' criteria), on every store.

Expected results are computed from the seed world with plain Python predicates and
compared as id lists, so order (creation order) is checked too.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from pytest_crmbench.crm import CRM, CrmError, Store
from pytest_crmbench.crm.catalog import SEARCHES
from pytest_crmbench.locations import data_file

pytestmark = pytest.mark.conformance

ACME = "c8660634-6723-5b33-aae4-0771ee5825af"
ACME_ANALYTICS = "2dcdb658-ffea-5c21-80f6-a4c53140523f"
OPEN_OPP = "68b0516d-1470-507e-9243-85e46ed26899"
LINDA_CHEN = "3ec2d84f-320d-5579-9c6f-adb046513da4"
DAVID_CHEN = "26f57f63-bb17-5151-ad8e-5406e6f8b467"
WON_OPP = "178b12ec-ad1a-56a8-ac51-5929af80f00a"  # has a contract
STRATUS = "4ef719a6-14a7-5dc1-8f3f-99e22909e1aa"  # a company

TABLE = {
    "client_search": ("clients", "client_id"),
    "contact_search": ("contacts", "contact_id"),
    "opportunity_search": ("opportunities", "opportunity_id"),
    "quote_search": ("quotes", "quote_id"),
    "contract_search": ("contracts", "contract_id"),
    "company_search": ("companies", "company_id"),
}
ALLOWED = {
    "client_search": "address, client_id, email, industry, name, owner, phone, status",
    "contact_search": "client_id, contact_id, email, first_name, last_name, notes, phone, title",
    "opportunity_search": "amount, client_id, close_date, close_date_after, close_date_before, "
    "max_amount, min_amount, name, notes, opportunity_id, owner, probability, stage",
    "quote_search": "amount, max_amount, min_amount, opportunity_id, quote_id, quote_prefix, "
    "status, valid_until, version",
    "contract_search": "client_id, contract_id, document_url, end_date, opportunity_id, "
    "start_date, status, value",
    "company_search": "address, company_id, industry, name, type",
}


@cache
def raw() -> dict[str, Any]:
    with data_file("seed_world.json").open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def expected_ids(tool: str, predicate: Any) -> list[str]:
    table, key = TABLE[tool]
    return [r[key] for r in raw()[table] if predicate(r)]


def ids_of(tool: str, result: list[dict[str, Any]]) -> list[str]:
    return [r[TABLE[tool][1]] for r in result]


def has(field: str, needle: str) -> Any:
    """Case-insensitive substring (ASCII folding), the spec's text match."""
    return lambda r: r[field] is not None and needle.lower() in r[field].lower()


def eq(field: str, value: Any) -> Any:
    return lambda r: r[field] == value


# == no criteria, criteria object, ANDed criteria =======================================
@pytest.mark.parametrize("tool", list(TABLE))
def test_no_criteria_returns_everything_in_creation_order(crm: CRM, tool: str) -> None:
    expected = raw()[TABLE[tool][0]]
    assert crm.call(tool, {}, agent=True) == expected
    assert crm.call(tool) == expected
    assert crm.call(tool, {"criteria": {}}) == expected
    assert crm.call(tool, {"criteria": None}) == expected
    assert getattr(crm, tool)() == expected


# (tool, criteria, predicate over seed records, tag)
# fmt: off
CASES: list[Any] = [
    # -- text: case-insensitive substring ------------------------------------------------
    ("client_search", {"name": "acme"}, has("name", "acme"), "name-acme-finds-both"),
    ("client_search", {"name": "ACME CORP"}, has("name", "acme corp"), "name-upper"),
    ("client_search", {"name": "Bluefin"}, has("name", "bluefin"), "name-bluefin-both"),
    ("client_search", {"email": "ops@bluefin.co"}, has("email", "ops@bluefin.co"),
     "email-substring-finds-com-and-co"),
    ("client_search", {"email": "ops@bluefin.com"}, has("email", "ops@bluefin.com"),
     "email-com-only"),
    ("client_search", {"industry": "health"}, has("industry", "health"), "industry"),
    ("client_search", {"owner": "patel"}, has("owner", "patel"), "owner"),
    ("client_search", {"phone": "555-01"}, has("phone", "555-01"), "phone"),
    ("client_search", {"address": ", oh "}, has("address", ", oh"), "address-trimmed-needle"),
    ("client_search", {"name": "  acme  "}, has("name", "acme"), "needle-trimmed"),
    ("client_search", {"name": "zzz-nothing"}, lambda r: False, "no-match"),
    ("contact_search", {"last_name": "Chen"}, eq("last_name", "Chen"), "chen-finds-both"),
    ("contact_search", {"last_name": "chen"}, eq("last_name", "Chen"), "chen-lower"),
    ("contact_search", {"first_name": "LINDA"}, has("first_name", "linda"), "first-name"),
    ("contact_search", {"title": "officer"}, has("title", "officer"), "title"),
    ("contact_search", {"email": "@acmecorp.com"}, has("email", "@acmecorp.com"), "email"),
    ("contact_search", {"notes": "email"}, has("notes", "email"), "notes"),
    ("opportunity_search", {"name": "data platform renewal"},
     has("name", "data platform renewal"), "two-renewals"),
    ("opportunity_search", {"name": "– Data"}, has("name", "– data"), "en-dash"),
    ("opportunity_search", {"owner": "sofia"}, has("owner", "sofia"), "owner"),
    ("opportunity_search", {"notes": "plant"}, has("notes", "plant"), "notes"),
    ("quote_search", {"version": "V2"}, has("version", "v2"), "version"),
    ("quote_search", {"quote_prefix": "q20"}, has("quote_prefix", "q20"), "prefix-substring"),
    ("contract_search", {"document_url": "ACME"}, has("document_url", "acme"), "document-url"),
    ("company_search", {"name": "partners"}, has("name", "partners"), "company-name"),
    ("company_search", {"industry": "software"}, has("industry", "software"), "company-industry"),
    ("company_search", {"address": "austin"}, has("address", "austin"), "company-address"),
    # -- enums: case-insensitive whole value ----------------------------------------------
    ("client_search", {"status": "active"}, eq("status", "Active"), "status-lower"),
    ("client_search", {"status": "PROSPECT"}, eq("status", "Prospect"), "status-upper"),
    ("client_search", {"status": " Inactive "}, eq("status", "Inactive"), "status-padded"),
    ("client_search", {"status": "Activ"}, lambda r: False, "status-prefix-no-match"),
    ("client_search", {"status": "ctive"}, lambda r: False, "status-substring-no-match"),
    ("opportunity_search", {"stage": "closed-won"}, eq("stage", "Closed-Won"), "stage-lower"),
    ("opportunity_search", {"stage": "CLOSED-LOST"}, eq("stage", "Closed-Lost"), "stage-upper"),
    ("opportunity_search", {"stage": "Closed"}, lambda r: False, "stage-partial-no-match"),
    ("quote_search", {"status": "draft"}, eq("status", "Draft"), "status-draft"),
    ("quote_search", {"status": "CANCELED"}, eq("status", "Canceled"), "status-canceled"),
    ("quote_search", {"status": "Cancelled"}, lambda r: False, "status-misspelled"),
    ("contract_search", {"status": "pending"}, eq("status", "Pending"), "status-pending"),
    ("company_search", {"type": "competitor"}, eq("type", "Competitor"), "type-competitor"),
    ("company_search", {"type": "VENDOR"}, eq("type", "Vendor"), "type-vendor"),
    # -- ids: exact, case-insensitive UUIDs; malformed → empty ----------------------------
    ("client_search", {"client_id": ACME}, eq("client_id", ACME), "client-id"),
    ("client_search", {"client_id": ACME.upper()}, eq("client_id", ACME), "client-id-upper"),
    ("client_search", {"client_id": ACME[:8]}, lambda r: False, "client-id-prefix-no-match"),
    ("client_search", {"client_id": "not-a-uuid"}, lambda r: False, "client-id-malformed"),
    ("client_search", {"client_id": "'; DROP TABLE clients; --"}, lambda r: False,
     "client-id-sql"),
    ("contact_search", {"client_id": ACME}, eq("client_id", ACME), "contacts-of-acme"),
    ("contact_search", {"client_id": ACME.upper(), "last_name": "chen"},
     lambda r: r["contact_id"] == LINDA_CHEN, "linda-only"),
    ("contact_search", {"contact_id": DAVID_CHEN}, eq("contact_id", DAVID_CHEN), "contact-id"),
    ("opportunity_search", {"client_id": ACME_ANALYTICS}, eq("client_id", ACME_ANALYTICS),
     "opps-of-acme-analytics"),
    ("opportunity_search", {"opportunity_id": OPEN_OPP.upper()}, eq("opportunity_id", OPEN_OPP),
     "opportunity-id"),
    ("opportunity_search", {"client_id": ACME[:-1]}, lambda r: False, "client-id-truncated"),
    ("quote_search", {"opportunity_id": OPEN_OPP}, eq("opportunity_id", OPEN_OPP), "quotes-of"),
    ("quote_search", {"quote_id": "x"}, lambda r: False, "quote-id-malformed"),
    ("contract_search", {"client_id": ACME}, eq("client_id", ACME), "contracts-of-acme"),
    ("contract_search", {"opportunity_id": WON_OPP.upper()}, eq("opportunity_id", WON_OPP),
     "contract-by-opportunity"),
    ("company_search", {"company_id": STRATUS}, eq("company_id", STRATUS), "company-id"),
    # -- numbers: exact; ranges inclusive -------------------------------------------------
    ("opportunity_search", {"amount": 27500}, eq("amount", 27500.0), "amount-int"),
    ("opportunity_search", {"amount": 27500.0}, eq("amount", 27500.0), "amount-float"),
    ("opportunity_search", {"amount": 27500.01}, lambda r: False, "amount-not-approximate"),
    ("opportunity_search", {"min_amount": 860000}, lambda r: r["amount"] >= 860000,
     "min-amount-inclusive"),
    ("opportunity_search", {"max_amount": 9800}, lambda r: r["amount"] <= 9800,
     "max-amount-inclusive"),
    ("opportunity_search", {"min_amount": 48000, "max_amount": 63750},
     lambda r: 48000 <= r["amount"] <= 63750, "amount-range"),
    ("opportunity_search", {"min_amount": 63750, "max_amount": 48000}, lambda r: False,
     "empty-range"),
    ("opportunity_search", {"min_amount": 1e300}, lambda r: False, "min-amount-huge"),
    ("opportunity_search", {"probability": 50}, eq("probability", 50), "probability"),
    ("opportunity_search", {"probability": 50.0}, eq("probability", 50), "probability-float"),
    ("opportunity_search", {"probability": 10**12}, lambda r: False, "probability-huge"),
    ("quote_search", {"amount": 215000}, eq("amount", 215000.0), "quote-amount"),
    ("quote_search", {"min_amount": 1250000, "max_amount": 1875000},
     lambda r: 1250000 <= r["amount"] <= 1875000, "quote-amount-range"),
    ("contract_search", {"value": 412750}, eq("value", 412750.0), "contract-value"),
    # -- dates: exact; close-date window inclusive ----------------------------------------
    ("opportunity_search", {"close_date": "2025-12-15"}, eq("close_date", "2025-12-15"),
     "close-date"),
    ("opportunity_search", {"close_date_before": "2025-10-31"},
     lambda r: (r["close_date"] or "9") <= "2025-10-31", "close-date-before-inclusive"),
    ("opportunity_search", {"close_date_after": "2026-07-31"},
     lambda r: (r["close_date"] or "0") >= "2026-07-31", "close-date-after-inclusive"),
    ("opportunity_search", {"close_date_after": "2025-10-01", "close_date_before": "2025-11-30"},
     lambda r: "2025-10-01" <= (r["close_date"] or "") <= "2025-11-30", "close-date-window"),
    ("quote_search", {"valid_until": "2025-10-15"}, eq("valid_until", "2025-10-15"),
     "valid-until"),
    ("contract_search", {"start_date": "2024-06-01"}, eq("start_date", "2024-06-01"),
     "start-date"),
    ("contract_search", {"end_date": "2026-03-31"}, eq("end_date", "2026-03-31"), "end-date"),
    # -- criteria are ANDed --------------------------------------------------------------
    ("client_search", {"status": "active", "owner": "maya"},
     lambda r: r["status"] == "Active" and r["owner"] == "Maya Patel", "and-status-owner"),
    ("client_search", {"name": "acme", "email": "acmecorp"},
     lambda r: r["client_id"] == ACME, "and-narrows-to-one"),
    ("opportunity_search", {"stage": "proposal", "owner": "ethan", "min_amount": 200000},
     lambda r: r["stage"] == "Proposal" and r["owner"] == "Ethan Brooks"
     and r["amount"] >= 200000, "and-three"),
    ("opportunity_search", {"client_id": ACME, "stage": "Closed-Lost"}, lambda r: False,
     "and-disjoint"),
    ("quote_search", {"status": "sent", "quote_prefix": "rnw"},
     lambda r: r["status"] == "Sent" and r["quote_prefix"] == "RNW", "and-quote"),
    ("contract_search", {"status": "active", "client_id": ACME},
     lambda r: r["status"] == "Active" and r["client_id"] == ACME, "and-contract"),
    ("company_search", {"type": "partner", "industry": "consulting"},
     lambda r: r["type"] == "Partner" and r["industry"] == "Consulting", "and-company"),
    # -- null criteria are ignored -------------------------------------------------------
    ("client_search", {"name": None, "status": "prospect"}, eq("status", "Prospect"),
     "null-criterion-ignored"),
]
# fmt: on


@pytest.mark.parametrize(
    ("tool", "criteria", "predicate"),
    [pytest.param(t, c, p, id=f"{t}-{i}") for t, c, p, i in CASES],
)
def test_search(crm: CRM, tool: str, criteria: dict[str, Any], predicate: Any) -> None:
    expected = expected_ids(tool, predicate)
    assert ids_of(tool, crm.call(tool, criteria, agent=True)) == expected
    # the same criteria as a criteria object
    assert ids_of(tool, crm.call(tool, {"criteria": criteria})) == expected


def test_search_results_are_full_records(crm: CRM) -> None:
    result = crm.client_search(name="Acme Analytics")
    assert result == [r for r in raw()["clients"] if r["client_id"] == ACME_ANALYTICS]


def test_keyword_and_criteria_object_are_merged(crm: CRM) -> None:
    result = crm.opportunity_search(stage="Negotiation", criteria={"owner": "marcus"})
    expected = expected_ids(
        "opportunity_search",
        lambda r: r["stage"] == "Negotiation" and r["owner"] == "Marcus Okafor",
    )
    assert ids_of("opportunity_search", result) == expected
    assert len(expected) == 2


def test_near_duplicates_are_both_found(crm: CRM) -> None:
    names = [c["name"] for c in crm.client_search(name="acme")]
    assert names == ["Acme Corporation", "Acme Analytics"]
    contacts = [(c["first_name"], c["last_name"]) for c in crm.contact_search(last_name="Chen")]
    assert contacts == [("Linda", "Chen"), ("David", "Chen")]
    deals = [o["name"] for o in crm.opportunity_search(name="Data Platform Renewal")]
    assert deals == [
        "Acme Corporation – Data Platform Renewal",
        "Acme Analytics – Data Platform Renewal",
    ]
    emails = [c["email"] for c in crm.client_search(email="OPS@BLUEFIN")]
    assert emails == ["ops@bluefin.com", "ops@bluefin.co"]


# == literal wildcards ====================================================================
WILD_NAMES = ["100% Organic", "under_score Inc", "Back\\slash Ltd", "Plain Percent Co"]


@pytest.mark.parametrize(
    ("needle", "expected"),
    [
        pytest.param("%", ["100% Organic"], id="percent"),
        pytest.param("0%", ["100% Organic"], id="digit-percent"),
        pytest.param("_", ["under_score Inc"], id="underscore"),
        pytest.param("r_s", ["under_score Inc"], id="underscore-inside"),
        pytest.param("\\", ["Back\\slash Ltd"], id="backslash"),
        pytest.param("k\\s", ["Back\\slash Ltd"], id="backslash-inside"),
        pytest.param("%%", [], id="double-percent"),
        pytest.param("P%t", [], id="percent-is-not-a-wildcard"),
        pytest.param("u_der", [], id="underscore-is-not-a-wildcard"),
        pytest.param("\\%", [], id="escaped-percent"),
        pytest.param("plain percent", ["Plain Percent Co"], id="plain"),
    ],
)
def test_wildcards_match_literally(crm: CRM, needle: str, expected: list[str]) -> None:
    for i, name in enumerate(WILD_NAMES):
        crm.create_new_client(name=name, email=f"w{i}@wild.test", status="Active")
    assert [c["name"] for c in crm.client_search(name=needle)] == expected


def test_wildcards_in_other_tools(crm: CRM) -> None:
    crm.create_new_contact(first_name="Per%cent", last_name="Under_score", client_id=ACME)
    crm.create_quote(opportunity_id=OPEN_OPP, amount=1, status="Draft", version="v_1%")
    assert [c["first_name"] for c in crm.contact_search(first_name="%")] == ["Per%cent"]
    assert [c["last_name"] for c in crm.contact_search(last_name="_")] == ["Under_score"]
    assert [q["version"] for q in crm.quote_search(version="_1%")] == ["v_1%"]
    assert crm.quote_search(version="v_") != crm.quote_search()
    assert len(crm.opportunity_search(name="%")) == 0


def test_case_folding_is_ascii_only(crm: CRM) -> None:
    crm.create_new_client(name="ÄRZTE Verbund", email="a@arzte.test", status="Active")
    assert [c["name"] for c in crm.client_search(name="ÄRZTE")] == ["ÄRZTE Verbund"]
    assert [c["name"] for c in crm.client_search(name="rzte verb")] == ["ÄRZTE Verbund"]
    assert crm.client_search(name="ärzte") == []


# == creation order and new records =======================================================
def test_new_records_come_after_the_seed(crm: CRM) -> None:
    a = crm.create_new_client(name="Acme Zeta", email="z@acme-zeta.test", status="Active")
    b = crm.create_new_client(name="ACME Alpha", email="a@acme-alpha.test", status="Prospect")
    names = [c["name"] for c in crm.client_search(name="acme")]
    assert names == ["Acme Corporation", "Acme Analytics", "Acme Zeta", "ACME Alpha"]
    assert [c["client_id"] for c in crm.client_search()][-2:] == [a["client_id"], b["client_id"]]


def test_modified_records_keep_their_place(crm: CRM) -> None:
    crm.modify_client(client_id=ACME, updates={"name": "Acme Corp (renamed)"})
    crm.create_new_client(name="Acme Last", email="l@acme-last.test", status="Active")
    names = [c["name"] for c in crm.client_search(name="acme")]
    assert names == ["Acme Corp (renamed)", "Acme Analytics", "Acme Last"]


def test_search_reflects_deletes_and_changes(crm: CRM) -> None:
    crm.delete_opportunity(OPEN_OPP)
    assert crm.quote_search(opportunity_id=OPEN_OPP) == []
    assert [o["name"] for o in crm.opportunity_search(name="data platform renewal")] == [
        "Acme Analytics – Data Platform Renewal"
    ]
    crm.modify_opportunity("b9bc1d17-ad26-57cd-a5cf-0e9405c3f7e3", {"stage": "Negotiation"})
    assert (
        len(crm.opportunity_search(stage="proposal"))
        == len(expected_ids("opportunity_search", eq("stage", "Proposal"))) - 1
    )


def test_null_fields_never_match(crm: CRM) -> None:
    crm.create_new_client(name="No Owner", email="no@owner.test", status="Active")
    assert "No Owner" not in [c["name"] for c in crm.client_search(owner="")]
    with_prefix = expected_ids("quote_search", lambda r: r["quote_prefix"] is not None)
    assert ids_of("quote_search", crm.quote_search(quote_prefix="")) == with_prefix
    dated = expected_ids("opportunity_search", lambda r: r["close_date"] is not None)
    assert ids_of("opportunity_search", crm.opportunity_search(close_date_after="1900-01-01")) == (
        dated
    )


# == search errors =========================================================================
def _unknown_cases() -> list[Any]:
    cases = []
    for tool in TABLE:
        for field in ("bogus", "Name", "created_date"):
            cases.append(pytest.param(tool, {field: "x"}, field, id=f"{tool}-{field}"))
        cases.append(
            pytest.param(tool, {"criteria": {"zzz": 1}}, "zzz", id=f"{tool}-in-criteria-object")
        )
    cases.append(
        pytest.param(
            "client_search",
            {"criteria": {"criteria": {}}},
            "criteria",
            id="client_search-nested-criteria",
        )
    )
    cases.append(
        pytest.param(
            "quote_search",
            {"close_date_before": "2026-01-01"},
            "close_date_before",
            id="quote_search-opportunity-only-field",
        )
    )
    cases.append(
        pytest.param(
            "client_search", {"min_amount": 1}, "min_amount", id="client_search-min-amount"
        )
    )
    return cases


@pytest.mark.parametrize(("tool", "args", "field"), _unknown_cases())
def test_unknown_search_field(
    crm: CRM, store: Store, tool: str, args: dict[str, Any], field: str
) -> None:
    with pytest.raises(CrmError) as info:
        crm.call(tool, args)
    assert str(info.value) == (
        f"Unknown search field '{field}' for {tool} (allowed: {ALLOWED[tool]})."
    )


@pytest.mark.parametrize("tool", list(TABLE))
def test_allowed_search_fields_are_the_whitelist(tool: str) -> None:
    names = sorted(item.partition("=")[0] for item in SEARCHES[tool][1].split())
    assert ", ".join(names) == ALLOWED[tool]


@pytest.mark.parametrize(
    ("tool", "args", "message"),
    [
        pytest.param(
            "client_search",
            {"name": 5},
            "Search field 'name' must be a string.",
            id="text-not-string",
        ),
        pytest.param(
            "client_search",
            {"status": ["Active"]},
            "Search field 'status' must be a string.",
            id="enum-not-string",
        ),
        pytest.param(
            "client_search",
            {"client_id": 5},
            "Search field 'client_id' must be a string.",
            id="id-not-string",
        ),
        pytest.param(
            "opportunity_search",
            {"amount": "27500"},
            "Search field 'amount' must be numeric.",
            id="amount-string",
        ),
        pytest.param(
            "opportunity_search",
            {"min_amount": True},
            "Search field 'min_amount' must be numeric.",
            id="min-amount-bool",
        ),
        pytest.param(
            "quote_search",
            {"max_amount": float("nan")},
            "Search field 'max_amount' must be numeric.",
            id="max-amount-nan",
        ),
        pytest.param(
            "opportunity_search",
            {"probability": 50.5},
            "Search field 'probability' must be a whole number.",
            id="probability-frac",
        ),
        pytest.param(
            "opportunity_search",
            {"close_date": "12/15/2025"},
            "Search field 'close_date' must be a valid ISO-8601 date (YYYY-MM-DD).",
            id="close-date-us",
        ),
        pytest.param(
            "opportunity_search",
            {"close_date_before": 20251231},
            "Search field 'close_date_before' must be a valid ISO-8601 date (YYYY-MM-DD).",
            id="close-date-before-int",
        ),
        pytest.param(
            "contract_search",
            {"start_date": "2024-02-30"},
            "Search field 'start_date' must be a valid ISO-8601 date (YYYY-MM-DD).",
            id="start-date-invalid",
        ),
        pytest.param(
            "client_search",
            {"criteria": ["name"]},
            "Search criteria must be provided as an object.",
            id="criteria-not-object",
        ),
    ],
)
def test_search_value_errors(crm: CRM, tool: str, args: dict[str, Any], message: str) -> None:
    with pytest.raises(CrmError) as info:
        crm.call(tool, args)
    assert str(info.value) == message


def test_summarize_uses_the_same_criteria(crm: CRM) -> None:
    for criteria in (
        {"stage": "closed-won"},
        {"owner": "maya", "min_amount": 50000},
        {"close_date_after": "2025-10-01", "close_date_before": "2025-12-31"},
    ):
        found = crm.opportunity_search(**criteria)
        summary = crm.summarize_opportunities(criteria=criteria)
        assert summary["total_count"] == len(found)
        assert summary["total_amount"] == sum(o["amount"] for o in found)
