"""Conformance: every validation rule of the CRM with its exact message, on every store.

Each case is one test id. Every failing call is also checked to leave the store exactly
as it was (the dump before and after compare equal, repr for repr).
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import pytest

from pytest_crmbench.crm import BY_TOOL, CRM, TOOLS, CrmError, Store

pytestmark = pytest.mark.conformance

# -- seed records used as fixed points ---------------------------------------------------
ACME = "c8660634-6723-5b33-aae4-0771ee5825af"  # Acme Corporation
ACME_ANALYTICS = "2dcdb658-ffea-5c21-80f6-a4c53140523f"
OPEN_OPP = "68b0516d-1470-507e-9243-85e46ed26899"  # Acme Corporation – Data Platform Renewal
ANALYTICS_OPP = "b9bc1d17-ad26-57cd-a5cf-0e9405c3f7e3"  # Acme Analytics – Data Platform Renewal
WON_OPP = "178b12ec-ad1a-56a8-ac51-5929af80f00a"  # Closed-Won (Acme Corporation)
LOST_OPP = "1315fd9d-a02f-5f1b-bd24-dd13bb61a665"  # Closed-Lost
QUOTE = "cdac9c79-32ea-5aea-87e1-49a2813b3ff2"  # Sent, on OPEN_OPP
CONTRACT = "3cd90a9f-5c01-5d95-81b4-61478a306e65"
LINDA_CHEN = "3ec2d84f-320d-5579-9c6f-adb046513da4"
NO_SUCH = "00000000-0000-4000-8000-000000000000"

CLIENT_STATUSES = "Active, Inactive, Prospect"
STAGES = "Closed-Lost, Closed-Won, Negotiation, Proposal, Prospecting, Qualification"
QUOTE_STATUSES = "Approved, Canceled, Draft, Rejected, Sent"
CONTRACT_STATUSES = "Active, Expired, Pending"
DOC_TYPES = "Client, Contract, Opportunity, Quote"
NOTE_TYPES = "Client, Contact, Contract, Opportunity, Quote"
EXTENSIONS = "csv, doc, docx, key, pdf, ppt, pptx, txt, xlsx"
ISO = "must be a valid ISO-8601 date (YYYY-MM-DD)."
AS_DATE = "must be provided as a date or ISO-8601 string."
AS_STRING = "must be provided as a string."
BLANK = "must not be blank or whitespace."
PADDED = "must not contain leading or trailing whitespace."
FILE_CHARS = "Document file name may only include letters, numbers, dots, underscores, and hyphens."
PROB_NUMERIC = "Probability must be numeric."
PROB_WHOLE = "Probability must be expressed as a whole-number percentage."
PROB_RANGE = "Probability must be between 1 and 99."

DROP: Any = object()  # an override that removes the argument

# A valid call of every one of the 38 methods.
# fmt: off
VALID: dict[str, dict[str, Any]] = {
    "create_new_client": {"name": "Zephyr Labs", "email": "hello@zephyr.test", "status": "Active"},
    "create_new_contact": {"first_name": "Ada", "last_name": "Lovelace", "client_id": ACME},
    "create_new_opportunity": {"name": "Zephyr Pilot", "client_id": ACME, "amount": 50000,
                               "stage": "Prospecting"},
    "create_quote": {"opportunity_id": OPEN_OPP, "amount": 1000, "status": "Draft"},
    "create_contract": {"client_id": ACME},
    "upload_document": {"entity_type": "Opportunity", "entity_id": OPEN_OPP, "file_name": "a.pdf"},
    "add_note": {"entity_type": "Client", "entity_id": ACME, "content": "Called them."},
    "modify_client": {"client_id": ACME, "updates": {"phone": "555-0100"}},
    "modify_contact": {"contact_id": LINDA_CHEN, "updates": {"title": "COO"}},
    "modify_opportunity": {"opportunity_id": OPEN_OPP, "updates": {"owner": "Sam Lee"}},
    "modify_quote": {"quote_id": QUOTE, "updates": {"version": "v9"}},
    "delete_opportunity": {"opportunity_id": OPEN_OPP},
    "delete_quote": {"quote_id": QUOTE},
    "cancel_quote": {"quote_id": QUOTE},
    "clone_opportunity": {"opportunity_id": OPEN_OPP},
    "client_search": {}, "contact_search": {}, "opportunity_search": {}, "quote_search": {},
    "contract_search": {}, "company_search": {},
    "view_opportunity_details": {"opportunity_id": OPEN_OPP},
    "opportunity_details": {"opportunity_id": OPEN_OPP},
    "quote_details": {"quote_id": QUOTE},
    "compare_quotes": {"quote_ids": [QUOTE]},
    "compare_quote_details": {"quote_ids": [QUOTE]},
    "summarize_opportunities": {},
    "quote_prefixes": {},
    "ensure_client": {"name": "Zephyr Labs", "email": "hello@zephyr.test", "status": "Active"},
    "list_clients": {}, "list_contacts": {}, "list_opportunities": {}, "list_quotes": {},
    "list_contracts": {}, "list_documents": {}, "list_notes": {}, "list_companies": {},
    "summarize_counts": {},
}
# fmt: on


def args_for(tool: str, overrides: dict[str, Any]) -> dict[str, Any]:
    args = dict(VALID[tool])
    for key, value in overrides.items():
        if value is DROP:
            args.pop(key, None)
        else:
            args[key] = value
    return args


_SEED_DUMPS: dict[int, str] = {}


def seed_dump(store: Store) -> str:
    """repr of the seed world's dump on this store (every test starts from it)."""
    if id(store) not in _SEED_DUMPS:
        _SEED_DUMPS[id(store)] = repr(store.dump())
    return _SEED_DUMPS[id(store)]


def assert_fails(
    crm: CRM, store: Store, tool: str, args: Any, message: str, *, fresh: bool = True
) -> None:
    """The call fails with exactly ``message`` and changes nothing in the store.

    ``fresh``: nothing was changed yet in this test, so the dump before is the seed's
    (if something was, the comparison fails loudly rather than passing wrongly).
    """
    before = seed_dump(store) if fresh else repr(store.dump())
    with pytest.raises(CrmError) as info:
        crm.call(tool, args)
    assert str(info.value) == message
    assert type(info.value) is CrmError
    assert repr(store.dump()) == before


# == create: one rule per case ===========================================================
# (tool, field, label) of required text, optional text, enums and amounts
REQUIRED_TEXT = [
    ("create_new_client", "name", "Client name"),
    ("create_new_client", "email", "Client email"),
    ("create_new_contact", "first_name", "Contact first name"),
    ("create_new_contact", "last_name", "Contact last name"),
    ("create_new_opportunity", "name", "Opportunity name"),
    ("add_note", "content", "Note content"),
    ("upload_document", "file_name", "Document file name"),
]
OPTIONAL_TEXT = [
    ("create_new_client", "industry", "Client industry"),
    ("create_new_client", "phone", "Client phone"),
    ("create_new_client", "address", "Client address"),
    ("create_new_client", "owner", "Client owner"),
    ("create_new_contact", "title", "Contact title"),
    ("create_new_contact", "phone", "Contact phone"),
    ("create_new_contact", "notes", "Contact notes"),
    ("create_new_contact", "email", "Contact email"),
    ("create_new_opportunity", "owner", "Opportunity owner"),
    ("create_new_opportunity", "notes", "Opportunity notes"),
    ("create_quote", "version", "Quote version"),
    ("create_quote", "quote_prefix", "Quote prefix"),
    ("upload_document", "uploaded_by", "Document uploaded by"),
    ("upload_document", "file_url", "Document file URL"),
    ("add_note", "created_by", "Note created by"),
    ("create_contract", "document_url", "Contract document URL"),
]
ENUMS = [  # (tool, field, label, a valid value, the allowed values as listed in messages)
    ("create_new_client", "status", "Client status", "Active", CLIENT_STATUSES),
    ("create_new_opportunity", "stage", "Opportunity stage", "Proposal", STAGES),
    ("create_quote", "status", "Quote status", "Sent", QUOTE_STATUSES),
    ("create_contract", "status", "Contract status", "Active", CONTRACT_STATUSES),
    ("upload_document", "entity_type", "Document entity type", "Opportunity", DOC_TYPES),
    ("add_note", "entity_type", "Note entity type", "Client", NOTE_TYPES),
]
AMOUNTS = [
    ("create_new_opportunity", "amount", "Opportunity amount"),
    ("create_quote", "amount", "Quote amount"),
]
NOT_NUMERIC: list[tuple[str, Any]] = [
    ("120K", "120K"),
    ("numeric-string", "5000"),
    ("nan", math.nan),
    ("inf", math.inf),
    ("minus-inf", -math.inf),
    ("true", True),
    ("false", False),
    ("list", [5000]),
    ("object", {"value": 5000}),
]
BAD_URLS = [
    ("ftp", "ftp://files.example.com/a.pdf"),
    ("relative", "docs/a.pdf"),
    ("no-scheme", "www.example.com/a.pdf"),
    ("no-host", "https://"),
    ("javascript", "javascript:alert(1)"),
    ("space-in-host", "https://exa mple.com/a.pdf"),
    ("mailto", "mailto:ops@example.com"),
]
BAD_EMAILS = [
    ("no-at", "not-an-email"),
    ("no-domain", "someone@"),
    ("no-tld", "someone@example"),
    ("space", "some one@example.com"),
    ("two-ats", "a@b@example.com"),
    ("one-letter-tld", "a@example.c"),
    ("trailing-dot", "a@example.com."),
]
OPP = "create_new_opportunity"
DOC = "upload_document"

# (tool, overrides, message, tag) written out one per row
# fmt: off
CREATE_ROWS: list[tuple[str, dict[str, Any], str, str]] = [
    ("create_contract", {"value": -1}, "Contract value must not be negative.", "value-negative"),
    ("create_contract", {"value": 10_000_001}, "Contract value must not exceed 10,000,000.",
     "value-over"),
    # probability
    (OPP, {"probability": "fifty"}, PROB_NUMERIC, "probability-fifty"),
    (OPP, {"probability": "50"}, PROB_NUMERIC, "probability-string-50"),
    (OPP, {"probability": True}, PROB_NUMERIC, "probability-true"),
    (OPP, {"probability": False}, PROB_NUMERIC, "probability-false"),
    (OPP, {"probability": math.nan}, PROB_NUMERIC, "probability-nan"),
    (OPP, {"probability": math.inf}, PROB_NUMERIC, "probability-inf"),
    (OPP, {"probability": [50]}, PROB_NUMERIC, "probability-list"),
    (OPP, {"probability": 0.45}, PROB_WHOLE, "probability-0.45"),
    (OPP, {"probability": 42.5}, PROB_WHOLE, "probability-42.5"),
    (OPP, {"probability": 99.9}, PROB_WHOLE, "probability-99.9"),
    (OPP, {"probability": 0}, PROB_RANGE, "probability-0"),
    (OPP, {"probability": 100}, PROB_RANGE, "probability-100"),
    (OPP, {"probability": 125}, PROB_RANGE, "probability-125"),
    (OPP, {"probability": -10}, PROB_RANGE, "probability--10"),
    (OPP, {"probability": 100.0}, PROB_RANGE, "probability-100.0"),
    # close date
    (OPP, {"close_date": "12/31/2025"}, f"Close date {ISO}", "close_date-us-format"),
    (OPP, {"close_date": "2025-02-30"}, f"Close date {ISO}", "close_date-feb-30"),
    (OPP, {"close_date": "20271231"}, f"Close date {ISO}", "close_date-compact"),
    (OPP, {"close_date": "2027-12-31T10:00:00"}, f"Close date {ISO}", "close_date-with-time"),
    (OPP, {"close_date": "2027-12-31 10:00"}, f"Close date {ISO}", "close_date-with-space-time"),
    (OPP, {"close_date": "2026-13-01"}, f"Close date {ISO}", "close_date-month-13"),
    (OPP, {"close_date": ""}, f"Close date {ISO}", "close_date-empty"),
    (OPP, {"close_date": " 2026-01-15"}, f"Close date {ISO}", "close_date-padded"),
    (OPP, {"close_date": 20271231}, f"Close date {AS_DATE}", "close_date-int"),
    (OPP, {"close_date": True}, f"Close date {AS_DATE}", "close_date-bool"),
    (OPP, {"close_date": ["2027-12-31"]}, f"Close date {AS_DATE}", "close_date-list"),
    (OPP, {"close_date": "2025-09-30"}, "Close date must be today or in the future.",
     "close_date-past-yesterday"),
    (OPP, {"close_date": "2024-10-01"}, "Close date must be today or in the future.",
     "close_date-past-last-year"),
    (OPP, {"close_date": date(2025, 9, 1)}, "Close date must be today or in the future.",
     "close_date-past-date-object"),
    # other dates
    ("create_quote", {"valid_until": "2025-02-30"}, f"Quote valid until {ISO}",
     "valid_until-feb-30"),
    ("create_quote", {"valid_until": "03/01/2026"}, f"Quote valid until {ISO}", "valid_until-us"),
    ("create_quote", {"valid_until": 20260301}, f"Quote valid until {AS_DATE}", "valid_until-int"),
    ("create_contract", {"start_date": "2025-02-30"}, f"Contract start date {ISO}",
     "start_date-feb-30"),
    ("create_contract", {"start_date": "03/01/2026"}, f"Contract start date {ISO}",
     "start_date-us"),
    ("create_contract", {"start_date": 20260301}, f"Contract start date {AS_DATE}",
     "start_date-int"),
    ("create_contract", {"end_date": "2025-02-30"}, f"Contract end date {ISO}", "end_date-feb-30"),
    ("create_contract", {"end_date": "03/01/2026"}, f"Contract end date {ISO}", "end_date-us"),
    ("create_contract", {"end_date": 20260301}, f"Contract end date {AS_DATE}", "end_date-int"),
    # file names
    (DOC, {"file_name": "plan#.pdf"}, FILE_CHARS, "file_name-hash"),
    (DOC, {"file_name": "../../etc/passwd.pdf"}, FILE_CHARS, "file_name-path-traversal"),
    (DOC, {"file_name": "reports/q3.pdf"}, FILE_CHARS, "file_name-slash"),
    (DOC, {"file_name": "reports\\q3.pdf"}, FILE_CHARS, "file_name-backslash"),
    (DOC, {"file_name": "my plan.pdf"}, FILE_CHARS, "file_name-space"),
    (DOC, {"file_name": " plan.pdf"}, FILE_CHARS, "file_name-leading-space"),
    (DOC, {"file_name": "plän.pdf"}, FILE_CHARS, "file_name-unicode"),
    (DOC, {"file_name": "a;rm -rf.pdf"}, FILE_CHARS, "file_name-semicolon"),
    (DOC, {"file_name": "README"}, "Document file name must include an extension.",
     "file_name-no-dot"),
    (DOC, {"file_name": "quarterly_report"}, "Document file name must include an extension.",
     "file_name-no-dot-underscore"),
    # contracts: cross-field rules
    ("create_contract", {"start_date": "2026-01-01", "end_date": "2025-12-31"},
     "Contract end date must not be before its start date.", "dates-reversed"),
    ("create_contract", {"opportunity_id": ANALYTICS_OPP},
     f"Opportunity '{ANALYTICS_OPP}' does not belong to client '{ACME}'.",
     "opportunity-of-other-client"),
    ("create_contract", {"client_id": ACME.upper(), "opportunity_id": ANALYTICS_OPP.upper()},
     f"Opportunity '{ANALYTICS_OPP}' does not belong to client '{ACME}'.",
     "opportunity-of-other-client-upper-case-ids"),
]
# fmt: on
UNSUPPORTED = [  # (tag, file name, extension as shown)
    ("exe", "payload.exe", "exe"),
    ("upper-exe", "PAYLOAD.EXE", "EXE"),
    ("tar-gz", "backup.tar.gz", "gz"),
    ("png", "logo.png", "png"),
    ("pdf-exe", "invoice.pdf.exe", "exe"),
]


def _create_cases() -> list[Any]:
    rows: list[tuple[str, dict[str, Any], str, str]] = []
    for i, (tool, name, label) in enumerate(REQUIRED_TEXT):
        wrong = [("int", 123), ("list", ["x"]), ("bool", True)] if i == 0 else [("int", 123)]
        rows += [(tool, {name: x}, f"{label} {AS_STRING}", f"{name}-{t}") for t, x in wrong]
        blanks = [("empty", ""), ("spaces", "   ")] + ([("tabs", "\t\n ")] if i == 0 else [])
        rows += [(tool, {name: x}, f"{label} {BLANK}", f"{name}-blank-{t}") for t, x in blanks]
    for tool, name, label in OPTIONAL_TEXT:
        rows.append((tool, {name: 42}, f"{label} {AS_STRING}", f"{name}-int"))
    for i, (tool, name, label, good, allowed) in enumerate(ENUMS):
        padded = [("leading-space", " " + good), ("trailing-space", good + " ")]
        unknown = [("lower", good.lower()), ("unknown", "Bogus"), ("empty", "")]
        wrong: list[tuple[str, Any]] = [("int", 1)]
        if i == 0:
            padded += [("tab", "\t" + good), ("newline", good + "\n")]
            unknown += [("upper", good.upper()), ("blank", "  ")]
            wrong += [("bool", True), ("list", [good])]
        rows += [(tool, {name: x}, f"{label} {PADDED}", f"{name}-padded-{t}") for t, x in padded]
        one_of = f"{label} must be one of: {allowed}."
        rows += [(tool, {name: x}, one_of, f"{name}-{t}") for t, x in unknown]
        rows += [(tool, {name: x}, f"{label} {AS_STRING}", f"{name}-{t}") for t, x in wrong]
    for i, (tool, name, label) in enumerate(AMOUNTS):
        numeric = NOT_NUMERIC if i == 0 else NOT_NUMERIC[:6]
        rows += [(tool, {name: x}, f"{label} must be numeric.", f"{name}-{t}") for t, x in numeric]
        low = [("zero", 0), ("negative", -5), ("tiny-negative", -0.01)]
        rows += [(tool, {name: x}, f"{label} must be greater than zero.", f"{name}-{t}")
                 for t, x in low]  # fmt: skip
        high = [("just-over", 10_000_000.01), ("huge-int", 10**30)]
        rows += [(tool, {name: x}, f"{label} must not exceed 10,000,000.", f"{name}-{t}")
                 for t, x in high]  # fmt: skip
    rows += [("create_contract", {"value": x}, "Contract value must be numeric.", f"value-{t}")
             for t, x in NOT_NUMERIC[:6]]  # fmt: skip
    rows += CREATE_ROWS
    for tag, name, ext in UNSUPPORTED:
        message = f"Document file extension '.{ext}' is not supported (allowed: {EXTENSIONS})."
        rows.append((DOC, {"file_name": name}, message, f"file_name-{tag}"))
    for tool, name, label, urls in (
        ("create_contract", "document_url", "Contract document URL", BAD_URLS),
        (DOC, "file_url", "Document file URL", BAD_URLS[:3]),
    ):
        message = f"{label} must be an absolute http(s) URL."
        rows += [(tool, {name: x}, message, f"{name}-{t}") for t, x in urls]
    for tool, entity, emails in (
        ("create_new_client", "Client", BAD_EMAILS),
        ("create_new_contact", "Contact", BAD_EMAILS[:3]),
    ):
        message = f"{entity} email must be a valid email address."
        rows += [(tool, {"email": x}, message, f"email-{t}") for t, x in emails]
    return [pytest.param(tool, o, m, id=f"{tool}-{tag}") for tool, o, m, tag in rows]


@pytest.mark.parametrize(("tool", "overrides", "message"), _create_cases())
def test_create_rule(
    crm: CRM, store: Store, tool: str, overrides: dict[str, Any], message: str
) -> None:
    assert_fails(crm, store, tool, args_for(tool, overrides), message)


# == references: missing and malformed ids are "not found", never a database error ======
BAD_IDS: list[tuple[str, Any]] = [
    ("unknown-uuid", NO_SUCH),
    ("malformed", "abc"),
    ("empty", ""),
    ("sql", "'; DROP TABLE clients; --"),
    ("uuid-with-suffix", ACME + "x"),
    ("uuid-no-dashes", ACME.replace("-", "")),
    ("braced", "{" + ACME + "}"),
    ("int", 42),
]
REFS = [  # (tool, argument, entity named in the message); the first and the 8th get all ids
    ("create_new_contact", "client_id", "Client"),
    ("create_new_opportunity", "client_id", "Client"),
    ("create_quote", "opportunity_id", "Opportunity"),
    ("create_contract", "client_id", "Client"),
    ("create_contract", "opportunity_id", "Opportunity"),
    ("upload_document", "entity_id", "Opportunity"),
    ("add_note", "entity_id", "Client"),
    ("modify_client", "client_id", "Client"),
    ("modify_contact", "contact_id", "Contact"),
    ("modify_opportunity", "opportunity_id", "Opportunity"),
    ("modify_quote", "quote_id", "Quote"),
    ("delete_opportunity", "opportunity_id", "Opportunity"),
    ("delete_quote", "quote_id", "Quote"),
    ("cancel_quote", "quote_id", "Quote"),
    ("clone_opportunity", "opportunity_id", "Opportunity"),
    ("view_opportunity_details", "opportunity_id", "Opportunity"),
    ("opportunity_details", "opportunity_id", "Opportunity"),
    ("quote_details", "quote_id", "Quote"),
]
# fmt: off
WRONG_TYPE_IDS = [  # an existing id of another entity type
    ("create_quote", "opportunity_id", ACME, "Opportunity", "client-id-as-opportunity"),
    ("create_new_contact", "client_id", OPEN_OPP, "Client", "opportunity-id-as-client"),
    ("modify_quote", "quote_id", ACME, "Quote", "client-id-as-quote"),
    ("cancel_quote", "quote_id", OPEN_OPP, "Quote", "opportunity-id-as-quote"),
    ("delete_quote", "quote_id", CONTRACT, "Quote", "contract-id-as-quote"),
    ("quote_details", "quote_id", LINDA_CHEN, "Quote", "contact-id-as-quote"),
    ("delete_opportunity", "opportunity_id", QUOTE, "Opportunity", "quote-id-as-opp"),
    ("modify_contact", "contact_id", ACME, "Contact", "client-id-as-contact"),
    ("modify_client", "client_id", LINDA_CHEN, "Client", "contact-id-as-client"),
    ("create_contract", "opportunity_id", ACME, "Opportunity", "client-id-as-opportunity"),
    ("clone_opportunity", "opportunity_id", CONTRACT, "Opportunity", "contract-id-as-opp"),
]
WRONG_TARGETS = [  # documents and notes: the id must exist for the given entity type
    ("upload_document", "Quote", ACME), ("upload_document", "Client", OPEN_OPP),
    ("upload_document", "Contract", QUOTE), ("upload_document", "Opportunity", CONTRACT),
    ("add_note", "Contact", ACME), ("add_note", "Quote", LINDA_CHEN),
    ("add_note", "Contract", OPEN_OPP), ("add_note", "Opportunity", QUOTE),
    ("add_note", "Client", CONTRACT),
]
# fmt: on


def _ref_cases() -> list[Any]:
    cases = []
    for i, (tool, arg, entity) in enumerate(REFS):
        for tag, value in BAD_IDS if i in (0, 7) else BAD_IDS[:2]:
            shown = value if isinstance(value, str) else repr(value)
            message = f"{entity} not found with ID '{shown}'."
            cases.append(pytest.param(tool, {arg: value}, message, id=f"{tool}-{arg}-{tag}"))
    for tool, arg, value, entity, tag in WRONG_TYPE_IDS:
        message = f"{entity} not found with ID '{value}'."
        cases.append(pytest.param(tool, {arg: value}, message, id=f"{tool}-{tag}"))
    for tool, etype, value in WRONG_TARGETS:
        overrides = {"entity_type": etype, "entity_id": value}
        message = f"{etype} not found with ID '{value}'."
        cases.append(pytest.param(tool, overrides, message, id=f"{tool}-{etype}-wrong-target"))
    return cases


@pytest.mark.parametrize(("tool", "overrides", "message"), _ref_cases())
def test_missing_or_malformed_reference(
    crm: CRM, store: Store, tool: str, overrides: dict[str, Any], message: str
) -> None:
    assert_fails(crm, store, tool, args_for(tool, overrides), message)


# fmt: off
UPPER_CASE_ID_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("modify_client", {"client_id": ACME.upper(), "updates": {"phone": "1"}}),
    ("create_new_contact", {"first_name": "A", "last_name": "B", "client_id": ACME.upper()}),
    ("quote_details", {"quote_id": QUOTE.upper()}),
    ("upload_document",
     {"entity_type": "Opportunity", "entity_id": OPEN_OPP.upper(), "file_name": "x.pdf"}),
]
# fmt: on


@pytest.mark.parametrize(
    ("tool", "args"), [pytest.param(t, a, id=t) for t, a in UPPER_CASE_ID_CALLS]
)
def test_upper_case_ids_are_accepted_and_stored_canonically(
    crm: CRM, tool: str, args: dict[str, Any]
) -> None:
    result = crm.call(tool, args)
    for key in ("client_id", "quote_id", "entity_id"):
        if key in result:
            assert result[key] == result[key].lower()


# == accepted edge values ================================================================
# fmt: off
ACCEPTED: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    (OPP, {"amount": 10_000_000}, {"amount": 10_000_000.0}, "amount-exactly-10M"),
    (OPP, {"amount": 0.01}, {"amount": 0.01}, "amount-one-cent"),
    (OPP, {"amount": 7}, {"amount": 7.0}, "amount-int-stored-as-float"),
    ("create_quote", {"amount": 10_000_000.0}, {"amount": 10_000_000.0}, "quote-amount-10M"),
    (OPP, {"probability": 50.0}, {"probability": 50}, "probability-50.0-is-50"),
    (OPP, {"probability": 1}, {"probability": 1}, "probability-1"),
    (OPP, {"probability": 99}, {"probability": 99}, "probability-99"),
    (OPP, {"probability": None}, {"probability": None}, "probability-null"),
    (OPP, {"close_date": "2025-10-01"}, {"close_date": "2025-10-01"}, "close-date-today"),
    (OPP, {"close_date": "2028-02-29"}, {"close_date": "2028-02-29"}, "close-date-leap-day"),
    (OPP, {"close_date": date(2026, 1, 2)}, {"close_date": "2026-01-02"},
     "close-date-date-object"),
    (OPP, {"close_date": None}, {"close_date": None}, "close-date-null"),
    (OPP, {"name": "  Padded Name \t"}, {"name": "Padded Name"}, "text-trimmed"),
    (OPP, {"owner": "   ", "notes": ""}, {"owner": None, "notes": None},
     "blank-optional-text-is-null"),
    (OPP, {"stage": "Closed-Won"}, {"stage": "Closed-Won"}, "create-closed-deal"),
    ("create_quote", {"valid_until": "2020-01-01"}, {"valid_until": "2020-01-01"},
     "quote-valid-until-in-the-past"),
    ("create_quote", {"quote_prefix": "  ", "version": " v2 "},
     {"quote_prefix": None, "version": "v2"}, "quote-optional-text"),
    ("create_contract", {"start_date": "2026-01-01", "end_date": "2026-01-01"},
     {"start_date": "2026-01-01", "end_date": "2026-01-01"}, "contract-same-day"),
    ("create_contract", {}, {"status": "Pending", "opportunity_id": None, "value": None},
     "contract-defaults-pending"),
    ("create_contract", {"value": 0}, {"value": 0.0}, "contract-value-zero"),
    ("create_contract", {"opportunity_id": OPEN_OPP, "value": 10_000_000},
     {"opportunity_id": OPEN_OPP, "value": 10_000_000.0}, "contract-own-opportunity"),
    ("create_contract", {"document_url": "http://docs.example.com/c.pdf"},
     {"document_url": "http://docs.example.com/c.pdf"}, "contract-http-url"),
    ("create_contract", {"document_url": "  "}, {"document_url": None},
     "contract-blank-url-is-null"),
    (DOC, {"file_name": "BOARD_DECK.PPTX"}, {"file_name": "BOARD_DECK.PPTX"},
     "file-name-upper-case-extension"),
    (DOC, {"file_name": "v1.2_final-draft.docx"}, {"file_name": "v1.2_final-draft.docx"},
     "file-name-dots-and-dashes"),
    (DOC, {"file_name": "Q3.Key"}, {"file_name": "Q3.Key"}, "file-name-mixed-case-extension"),
    (DOC, {"entity_type": "Contract", "entity_id": CONTRACT,
           "file_url": "https://files.example.com/x.pdf"},
     {"entity_type": "Contract", "entity_id": CONTRACT}, "document-contract"),
    (DOC, {"entity_type": "Quote", "entity_id": QUOTE},
     {"entity_type": "Quote", "entity_id": QUOTE}, "document-quote"),
    (DOC, {"entity_type": "Client", "entity_id": ACME},
     {"entity_type": "Client", "entity_id": ACME}, "document-client"),
    ("add_note", {"entity_type": "Contact", "entity_id": LINDA_CHEN},
     {"entity_type": "Contact", "entity_id": LINDA_CHEN}, "note-contact"),
    ("add_note", {"entity_type": "Opportunity", "entity_id": WON_OPP},
     {"entity_type": "Opportunity", "entity_id": WON_OPP}, "note-opportunity"),
    ("add_note", {"entity_type": "Quote", "entity_id": QUOTE},
     {"entity_type": "Quote", "entity_id": QUOTE}, "note-quote"),
    ("add_note", {"entity_type": "Contract", "entity_id": CONTRACT},
     {"entity_type": "Contract", "entity_id": CONTRACT}, "note-contract"),
    ("create_new_contact", {"email": "linda.chen@acmecorp.com"},
     {"email": "linda.chen@acmecorp.com"}, "contact-email-not-unique"),
    ("create_new_contact", {"email": ""}, {"email": None}, "contact-blank-email-is-null"),
    ("create_new_client", {"email": "  Hello@Zephyr.TEST "}, {"email": "Hello@Zephyr.TEST"},
     "client-email-trimmed-case-kept"),
    ("create_new_client", {"email": "ops@bluefin.net"}, {"email": "ops@bluefin.net"},
     "client-email-near-duplicate-domain"),
]
# fmt: on


@pytest.mark.parametrize(
    ("tool", "overrides", "expected"), [pytest.param(t, o, e, id=i) for t, o, e, i in ACCEPTED]
)
def test_create_accepts(
    crm: CRM, store: Store, tool: str, overrides: dict[str, Any], expected: dict[str, Any]
) -> None:
    entity = BY_TOOL[tool].entity
    assert entity is not None
    before = len(store.find(entity.table))
    result = crm.call(tool, args_for(tool, overrides))
    for key, value in expected.items():
        assert result[key] == value
        assert type(result[key]) is type(value)
    stored = store.find(entity.table)
    assert len(stored) == before + 1
    assert stored[-1][entity.key] == result[entity.key]


# == duplicate client emails =============================================================
@pytest.mark.parametrize(
    ("email", "shown"),
    [
        pytest.param("procurement@acmecorp.com", "procurement@acmecorp.com", id="same"),
        pytest.param("PROCUREMENT@ACMECORP.COM", "PROCUREMENT@ACMECORP.COM", id="upper-case"),
        pytest.param("Procurement@AcmeCorp.com", "Procurement@AcmeCorp.com", id="mixed-case"),
        pytest.param("  procurement@acmecorp.com  ", "procurement@acmecorp.com", id="padded"),
        pytest.param("\tOPS@Bluefin.CO\n", "OPS@Bluefin.CO", id="padded-near-duplicate"),
    ],
)
def test_duplicate_client_email_on_create(crm: CRM, store: Store, email: str, shown: str) -> None:
    args = args_for("create_new_client", {"email": email})
    assert_fails(
        crm, store, "create_new_client", args, f"Client already exists with email '{shown}'."
    )


def test_duplicate_email_of_a_client_created_in_the_same_conversation(
    crm: CRM, store: Store
) -> None:
    crm.create_new_client(name="First", email="dup@new.test", status="Prospect")
    args = {"name": "Second", "email": "DUP@new.test", "status": "Active"}
    message = "Client already exists with email 'DUP@new.test'."
    assert_fails(crm, store, "create_new_client", args, message, fresh=False)


@pytest.mark.parametrize(
    ("email", "shown"),
    [
        pytest.param("procurement@acmecorp.com", "procurement@acmecorp.com", id="same"),
        pytest.param("PROCUREMENT@acmecorp.com", "PROCUREMENT@acmecorp.com", id="upper-case"),
        pytest.param(" procurement@acmecorp.com ", "procurement@acmecorp.com", id="padded"),
    ],
)
def test_duplicate_client_email_on_modify(crm: CRM, store: Store, email: str, shown: str) -> None:
    args = {"client_id": ACME_ANALYTICS, "updates": {"email": email}}
    assert_fails(crm, store, "modify_client", args, f"Client already exists with email '{shown}'.")


@pytest.mark.parametrize(
    "email",
    ["procurement@acmecorp.com", "PROCUREMENT@ACMECORP.COM", "  procurement@acmecorp.com "],
    ids=["same", "upper-case", "padded"],
)
def test_modify_client_to_its_own_email_is_fine(crm: CRM, store: Store, email: str) -> None:
    result = crm.modify_client(client_id=ACME, updates={"email": email})
    assert result["email"] == email.strip()
    assert store.get("clients", ACME)["email"] == email.strip()  # type: ignore[index]


# == arguments: required, unexpected, ids never from the caller ===========================
def _required_cases() -> list[Any]:
    cases = []
    for spec in TOOLS:
        required = [p.name for p in spec.params if p.required and p.name != "updates"]
        for name in required:
            message = f"{spec.name} requires '{name}'."
            cases.append(pytest.param(spec.name, {name: DROP}, message, id=f"{spec.name}-{name}"))
        if spec.group == "create" and required:
            name = required[-1]
            message = f"{spec.name} requires '{name}'."
            cases.append(
                pytest.param(spec.name, {name: None}, message, id=f"{spec.name}-{name}-null")
            )
    return cases


@pytest.mark.parametrize(("tool", "overrides", "message"), _required_cases())
def test_required_argument_missing(
    crm: CRM, store: Store, tool: str, overrides: dict[str, Any], message: str
) -> None:
    assert_fails(crm, store, tool, args_for(tool, overrides), message)


def _unexpected_cases() -> list[Any]:
    cases = []
    for spec in TOOLS:
        if spec.extra == "updates":  # keyword fields go into the updates
            assert spec.entity is not None
            message = f"{spec.entity.name} has no field named 'bogus'."
        elif spec.extra == "criteria":  # keyword fields are search criteria
            allowed = ", ".join(sorted(sf.name for sf in spec.search))
            message = f"Unknown search field 'bogus' for {spec.name} (allowed: {allowed})."
        else:
            message = f"{spec.name} got an unexpected argument 'bogus'."
        cases.append(pytest.param(spec.name, {"bogus": 1}, message, id=spec.name))
    return cases


@pytest.mark.parametrize(("tool", "overrides", "message"), _unexpected_cases())
def test_unexpected_argument(
    crm: CRM, store: Store, tool: str, overrides: dict[str, Any], message: str
) -> None:
    assert_fails(crm, store, tool, args_for(tool, overrides), message)


@pytest.mark.parametrize(
    ("tool", "arg"),
    [
        ("create_new_client", "client_id"),
        ("create_new_client", "created_date"),
        ("create_new_contact", "contact_id"),
        ("create_new_opportunity", "opportunity_id"),
        ("create_new_opportunity", "created_at"),
        ("create_quote", "quote_id"),
        ("create_quote", "created_date"),
        ("create_contract", "contract_id"),
        ("upload_document", "document_id"),
        ("upload_document", "uploaded_at"),
        ("add_note", "note_id"),
        ("add_note", "created_at"),
        ("ensure_client", "client_id"),
    ],
)
def test_ids_and_timestamps_never_come_from_the_caller(
    crm: CRM, store: Store, tool: str, arg: str
) -> None:
    message = f"{tool} got an unexpected argument '{arg}'."
    assert_fails(crm, store, tool, args_for(tool, {arg: NO_SUCH}), message)


def test_unexpected_argument_reported_before_missing_one(crm: CRM, store: Store) -> None:
    message = "create_new_client got an unexpected argument 'nickname'."
    assert_fails(crm, store, "create_new_client", {"nickname": "Z"}, message)


# == modify: field rules with " update" labels ===========================================
MODIFY_KEYS = {
    "modify_client": ACME,
    "modify_contact": LINDA_CHEN,
    "modify_opportunity": OPEN_OPP,
    "modify_quote": QUOTE,
}
MODIFY_ENTITIES = {
    "modify_client": "Client",
    "modify_contact": "Contact",
    "modify_opportunity": "Opportunity",
    "modify_quote": "Quote",
}
# (tool, updates, message, tag); the record is MODIFY_KEYS[tool]
# fmt: off
MODIFY_ROWS: list[tuple[str, dict[str, Any], str, str]] = [
    ("modify_client", {"name": ""}, f"Client name update {BLANK}", "name-blank"),
    ("modify_client", {"name": 5}, f"Client name update {AS_STRING}", "name-int"),
    ("modify_client", {"name": None}, f"Client name update {AS_STRING}", "name-null"),
    ("modify_client", {"email": "nope"}, "Client email must be a valid email address.",
     "email-invalid"),
    ("modify_client", {"email": "  "}, f"Client email update {BLANK}", "email-blank"),
    ("modify_client", {"email": 7}, f"Client email update {AS_STRING}", "email-int"),
    ("modify_client", {"status": "active"},
     f"Client status update must be one of: {CLIENT_STATUSES}.", "status-lower"),
    ("modify_client", {"status": "Active "}, f"Client status update {PADDED}", "status-padded"),
    ("modify_client", {"status": 1}, f"Client status update {AS_STRING}", "status-int"),
    ("modify_client", {"industry": 3}, f"Client industry update {AS_STRING}", "industry-int"),
    ("modify_client", {"owner": ["x"]}, f"Client owner update {AS_STRING}", "owner-list"),
    ("modify_contact", {"first_name": " "}, f"Contact first name update {BLANK}",
     "first-name-blank"),
    ("modify_contact", {"last_name": 1}, f"Contact last name update {AS_STRING}",
     "last-name-int"),
    ("modify_contact", {"email": "linda@"}, "Contact email must be a valid email address.",
     "email-invalid"),
    ("modify_contact", {"title": False}, f"Contact title update {AS_STRING}", "title-bool"),
    ("modify_opportunity", {"name": "\t"}, f"Opportunity name update {BLANK}", "name-blank"),
    ("modify_opportunity", {"stage": "Won"},
     f"Opportunity stage update must be one of: {STAGES}.", "stage-unknown"),
    ("modify_opportunity", {"stage": "closed-won"},
     f"Opportunity stage update must be one of: {STAGES}.", "stage-lower"),
    ("modify_opportunity", {"stage": " Proposal"}, f"Opportunity stage update {PADDED}",
     "stage-padded"),
    ("modify_opportunity", {"stage": None}, f"Opportunity stage update {AS_STRING}",
     "stage-null"),
    ("modify_opportunity", {"amount": "120K"}, "Opportunity amount update must be numeric.",
     "amount-120K"),
    ("modify_opportunity", {"amount": True}, "Opportunity amount update must be numeric.",
     "amount-bool"),
    ("modify_opportunity", {"amount": math.nan}, "Opportunity amount update must be numeric.",
     "amount-nan"),
    ("modify_opportunity", {"amount": None}, "Opportunity amount update must be numeric.",
     "amount-null"),
    ("modify_opportunity", {"amount": 0},
     "Opportunity amount update must be greater than zero.", "amount-zero"),
    ("modify_opportunity", {"amount": -100},
     "Opportunity amount update must be greater than zero.", "amount-negative"),
    ("modify_opportunity", {"amount": 20_000_000},
     "Opportunity amount update must not exceed 10,000,000.", "amount-over"),
    ("modify_opportunity", {"probability": "fifty"}, PROB_NUMERIC, "probability-fifty"),
    ("modify_opportunity", {"probability": True}, PROB_NUMERIC, "probability-bool"),
    ("modify_opportunity", {"probability": 42.5}, PROB_WHOLE, "probability-42.5"),
    ("modify_opportunity", {"probability": 0.45}, PROB_WHOLE, "probability-0.45"),
    ("modify_opportunity", {"probability": 0}, PROB_RANGE, "probability-0"),
    ("modify_opportunity", {"probability": 100}, PROB_RANGE, "probability-100"),
    ("modify_opportunity", {"probability": 125}, PROB_RANGE, "probability-125"),
    ("modify_opportunity", {"probability": -10}, PROB_RANGE, "probability--10"),
    ("modify_opportunity", {"close_date": "12/15/2025"}, f"Close date {ISO}", "close-date-us"),
    ("modify_opportunity", {"close_date": "2025-02-30"}, f"Close date {ISO}",
     "close-date-feb-30"),
    ("modify_opportunity", {"close_date": "20271231"}, f"Close date {ISO}",
     "close-date-compact"),
    ("modify_opportunity", {"close_date": "2027-12-31T00:00:00Z"}, f"Close date {ISO}",
     "close-date-with-time"),
    ("modify_opportunity", {"close_date": 20271231}, f"Close date {AS_DATE}", "close-date-int"),
    ("modify_opportunity", {"close_date": "2025-09-30"},
     "Close date must be today or in the future.", "close-date-past"),
    ("modify_opportunity", {"owner": 12}, f"Opportunity owner update {AS_STRING}", "owner-int"),
    ("modify_quote", {"amount": "1,000"}, "Quote amount update must be numeric.",
     "amount-string"),
    ("modify_quote", {"amount": -1}, "Quote amount update must be greater than zero.",
     "amount-negative"),
    ("modify_quote", {"amount": 10_000_000.5}, "Quote amount update must not exceed 10,000,000.",
     "amount-over"),
    ("modify_quote", {"status": "Cancelled"},
     f"Quote status update must be one of: {QUOTE_STATUSES}.", "status-cancelled"),
    ("modify_quote", {"status": "draft"},
     f"Quote status update must be one of: {QUOTE_STATUSES}.", "status-lower"),
    ("modify_quote", {"status": "Draft\n"}, f"Quote status update {PADDED}", "status-padded"),
    ("modify_quote", {"status": 2}, f"Quote status update {AS_STRING}", "status-int"),
    ("modify_quote", {"valid_until": "2025-02-30"}, f"Quote valid until update {ISO}",
     "valid-until-feb-30"),
    ("modify_quote", {"valid_until": 5}, f"Quote valid until update {AS_DATE}",
     "valid-until-int"),
    ("modify_quote", {"quote_prefix": 5}, f"Quote prefix update {AS_STRING}", "prefix-int"),
]
# fmt: on
UNKNOWN_FIELDS = {
    "modify_client": ["foo", "Name"],
    "modify_contact": ["company"],
    "modify_opportunity": ["stage_name", "Stage"],
    "modify_quote": ["price"],
}
FIXED_FIELDS = {
    "modify_client": ["client_id", "created_date"],
    "modify_contact": ["contact_id", "client_id"],
    "modify_opportunity": ["opportunity_id", "client_id", "created_at"],
    "modify_quote": ["quote_id", "opportunity_id", "created_date"],
}


def _modify_cases() -> list[Any]:
    cases = [pytest.param(t, u, m, id=f"{t}-{i}") for t, u, m, i in MODIFY_ROWS]
    for tool, names in UNKNOWN_FIELDS.items():
        for name in names:
            message = f"{MODIFY_ENTITIES[tool]} has no field named '{name}'."
            cases.append(pytest.param(tool, {name: "x"}, message, id=f"{tool}-unknown-{name}"))
    for tool, names in FIXED_FIELDS.items():
        for name in names:
            message = f"{MODIFY_ENTITIES[tool]} field '{name}' cannot be modified."
            cases.append(pytest.param(tool, {name: NO_SUCH}, message, id=f"{tool}-fixed-{name}"))
    return cases


@pytest.mark.parametrize(("tool", "updates", "message"), _modify_cases())
def test_modify_rule(
    crm: CRM, store: Store, tool: str, updates: dict[str, Any], message: str
) -> None:
    key = BY_TOOL[tool].params[0].name
    assert_fails(crm, store, tool, {key: MODIFY_KEYS[tool], "updates": updates}, message)


@pytest.mark.parametrize("tool", list(MODIFY_KEYS))
@pytest.mark.parametrize("empty", ["absent", "null", "empty-object"])
def test_modify_without_updates(crm: CRM, store: Store, tool: str, empty: str) -> None:
    args: dict[str, Any] = {BY_TOOL[tool].params[0].name: MODIFY_KEYS[tool]}
    if empty != "absent":
        args["updates"] = None if empty == "null" else {}
    assert_fails(crm, store, tool, args, "Must provide either updates dict or keyword args.")


def test_modify_updates_must_be_an_object(crm: CRM, store: Store) -> None:
    args = {"client_id": ACME, "updates": ["name"]}
    assert_fails(crm, store, "modify_client", args, "Client updates must be provided as an object.")


# fmt: off
MODIFY_ACCEPTED: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("modify_opportunity", {"probability": 50.0}, {"probability": 50}, "probability-50.0"),
    ("modify_opportunity", {"probability": None}, {"probability": None}, "probability-cleared"),
    ("modify_opportunity", {"close_date": "2025-10-01"}, {"close_date": "2025-10-01"},
     "close-date-today"),
    ("modify_opportunity", {"close_date": None}, {"close_date": None}, "close-date-cleared"),
    ("modify_opportunity", {"amount": 10_000_000}, {"amount": 10_000_000.0}, "amount-10M"),
    ("modify_opportunity", {"stage": "Closed-Lost"}, {"stage": "Closed-Lost"},
     "close-an-open-deal"),
    ("modify_opportunity",
     {"stage": "Closed-Won", "amount": 340000, "probability": 99, "close_date": "2025-12-01"},
     {"stage": "Closed-Won", "amount": 340000.0, "probability": 99, "close_date": "2025-12-01"},
     "close-with-guarded-fields"),
    ("modify_opportunity", {"notes": "  "}, {"notes": None}, "blank-notes-null"),
    ("modify_client", {"name": "  Acme Corp  ", "status": "Inactive"},
     {"name": "Acme Corp", "status": "Inactive"}, "client-two-fields"),
    ("modify_client", {"industry": ""}, {"industry": None}, "client-blank-industry"),
    ("modify_client", {"email": "ops@bluefin.org"}, {"email": "ops@bluefin.org"},
     "client-new-email"),
    ("modify_contact", {"email": "david.chen@harborviewhealth.org"},
     {"email": "david.chen@harborviewhealth.org"}, "contact-shared-email"),
    ("modify_contact", {"email": ""}, {"email": None}, "contact-email-cleared"),
    ("modify_quote", {"status": "Approved", "amount": 1}, {"status": "Approved", "amount": 1.0},
     "quote-status-amount"),
    ("modify_quote", {"valid_until": "2024-01-01"}, {"valid_until": "2024-01-01"},
     "quote-valid-until-past"),
]
# fmt: on


@pytest.mark.parametrize(
    ("tool", "updates", "expected"),
    [pytest.param(t, u, e, id=f"{t}-{i}") for t, u, e, i in MODIFY_ACCEPTED],
)
def test_modify_accepts(
    crm: CRM, store: Store, tool: str, updates: dict[str, Any], expected: dict[str, Any]
) -> None:
    spec = BY_TOOL[tool]
    assert spec.entity is not None
    key = MODIFY_KEYS[tool]
    before = store.get(spec.entity.table, key)
    result = crm.call(tool, {spec.entity.key: key, "updates": updates})
    for name, value in expected.items():
        assert result[name] == value
        assert type(result[name]) is type(value)
    after = store.get(spec.entity.table, key)
    assert after is not None and before is not None
    unchanged = [k for k in before if k not in expected]
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}


def test_modify_keyword_fields_are_merged_with_updates(crm: CRM) -> None:
    result = crm.modify_opportunity(OPEN_OPP, {"owner": "Sam Lee"}, notes="Merged")
    assert (result["owner"], result["notes"]) == ("Sam Lee", "Merged")
    result = crm.call("modify_quote", {"quote_id": QUOTE, "version": "v7"})
    assert result["version"] == "v7"


# == closed-deal guard ===================================================================
# fmt: off
GUARD_CASES: list[tuple[dict[str, Any], str]] = [
    ({"amount": 1}, "['amount']"),
    ({"stage": "Proposal"}, "['stage']"),
    ({"probability": 50}, "['probability']"),
    ({"close_date": "2026-01-01"}, "['close_date']"),
    ({"probability": 50, "amount": 1}, "['amount', 'probability']"),
    ({"stage": "Negotiation", "close_date": "2026-01-01"}, "['close_date', 'stage']"),
    ({"stage": "Proposal", "probability": 5, "close_date": "2026-01-01", "amount": 9},
     "['amount', 'close_date', 'probability', 'stage']"),
    ({"amount": "120K"}, "['amount']"),  # the guard comes before field validation
    ({"close_date": "2020-01-01", "notes": "ok"}, "['close_date']"),
    ({"bogus": 1, "amount": 5}, "['amount']"),  # ... and before the field names
    ({"probability": None}, "['probability']"),
]
# fmt: on


@pytest.mark.parametrize(
    ("key", "stage"),
    [
        pytest.param(WON_OPP, "Closed-Won", id="won"),
        pytest.param(LOST_OPP, "Closed-Lost", id="lost"),
    ],
)
@pytest.mark.parametrize(
    ("updates", "fields"), [pytest.param(u, f, id="+".join(u)) for u, f in GUARD_CASES]
)
def test_closed_deal_guard(
    crm: CRM, store: Store, key: str, stage: str, updates: dict[str, Any], fields: str
) -> None:
    message = f"Cannot modify closed opportunity fields {fields} while stage is '{stage}'."
    assert_fails(crm, store, "modify_opportunity", {"opportunity_id": key, "updates": updates},
                 message)  # fmt: skip


def test_closed_deal_guard_same_value_still_guarded(crm: CRM, store: Store) -> None:
    args = {"opportunity_id": WON_OPP, "updates": {"stage": "Closed-Won"}}
    message = "Cannot modify closed opportunity fields ['stage'] while stage is 'Closed-Won'."
    assert_fails(crm, store, "modify_opportunity", args, message)


@pytest.mark.parametrize("key", [WON_OPP, LOST_OPP], ids=["won", "lost"])
@pytest.mark.parametrize(
    "updates",
    [
        {"notes": "Post-mortem done."},
        {"owner": "Sam Lee"},
        {"name": "Renamed deal"},
        {"name": "Both", "owner": "Kim", "notes": None},
    ],
    ids=["notes", "owner", "name", "name-owner-notes"],
)
def test_closed_deal_allows_other_fields(crm: CRM, key: str, updates: dict[str, Any]) -> None:
    result = crm.modify_opportunity(opportunity_id=key, updates=updates)
    for name, value in updates.items():
        assert result[name] == value


def test_closing_a_deal_then_guarded(crm: CRM, store: Store) -> None:
    crm.modify_opportunity(OPEN_OPP, {"stage": "Closed-Won", "amount": 333000})
    args = {"opportunity_id": OPEN_OPP, "updates": {"amount": 1}}
    message = "Cannot modify closed opportunity fields ['amount'] while stage is 'Closed-Won'."
    assert_fails(crm, store, "modify_opportunity", args, message, fresh=False)


def test_created_closed_deal_is_guarded(crm: CRM, store: Store) -> None:
    opp = crm.create_new_opportunity(name="Done", client_id=ACME, amount=10, stage="Closed-Lost")
    args = {"opportunity_id": opp["opportunity_id"], "updates": {"stage": "Proposal"}}
    message = "Cannot modify closed opportunity fields ['stage'] while stage is 'Closed-Lost'."
    assert_fails(crm, store, "modify_opportunity", args, message, fresh=False)


# == order of checks =====================================================================
# create: referenced record exists → required strings → amount → enum → optional → unique;
# modify: record exists → closed-deal guard → fields → uniqueness. (tool, args, message, tag);
# create args are overrides of VALID[tool], modify args are complete.
# fmt: off
ORDER_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    (OPP, {"client_id": NO_SUCH, "name": "", "amount": "x", "stage": "Won", "probability": 500},
     f"Client not found with ID '{NO_SUCH}'.", "reference-first"),
    (OPP, {"name": " ", "amount": "x", "stage": "Won", "probability": 500, "close_date": "x"},
     f"Opportunity name {BLANK}", "required-string-before-amount"),
    (OPP, {"amount": 0, "stage": "Won", "probability": 500, "close_date": "x"},
     "Opportunity amount must be greater than zero.", "amount-before-enum"),
    (OPP, {"stage": " Proposal", "probability": 500, "close_date": "x"},
     f"Opportunity stage {PADDED}", "enum-before-optional"),
    (OPP, {"close_date": "2020-01-01", "probability": 500, "owner": 5},
     "Close date must be today or in the future.", "optional-in-field-order-close-date"),
    (OPP, {"probability": 500, "owner": 5}, PROB_RANGE, "optional-in-field-order-probability"),
    ("create_quote", {"opportunity_id": NO_SUCH, "amount": -1, "status": "x"},
     f"Opportunity not found with ID '{NO_SUCH}'.", "quote-reference-first"),
    ("create_quote", {"amount": -1, "status": "x", "valid_until": "x"},
     "Quote amount must be greater than zero.", "quote-amount-before-enum"),
    ("create_quote", {"status": "x", "valid_until": "x"},
     f"Quote status must be one of: {QUOTE_STATUSES}.", "quote-enum-before-optional"),
    ("create_new_client", {"name": "", "email": "bad", "status": "x"},
     f"Client name {BLANK}", "client-name-first"),
    ("create_new_client", {"email": "bad", "status": "x"},
     "Client email must be a valid email address.", "client-email-before-enum"),
    ("create_new_client", {"email": "procurement@acmecorp.com", "status": "x"},
     f"Client status must be one of: {CLIENT_STATUSES}.", "client-enum-before-uniqueness"),
    ("create_new_client", {"email": "procurement@acmecorp.com", "phone": 5},
     f"Client phone {AS_STRING}", "client-optional-before-uniqueness"),
    ("create_new_contact", {"client_id": "nope", "first_name": "", "email": "bad"},
     "Client not found with ID 'nope'.", "contact-reference-first"),
    ("create_new_contact", {"last_name": "", "email": "bad"},
     f"Contact last name {BLANK}", "contact-required-before-email"),
    ("create_contract", {"client_id": NO_SUCH, "opportunity_id": NO_SUCH, "status": "x"},
     f"Client not found with ID '{NO_SUCH}'.", "contract-client-first"),
    ("create_contract", {"opportunity_id": NO_SUCH, "status": "x"},
     f"Opportunity not found with ID '{NO_SUCH}'.", "contract-opportunity-second"),
    ("create_contract", {"opportunity_id": ANALYTICS_OPP, "status": "x", "value": -1},
     f"Opportunity '{ANALYTICS_OPP}' does not belong to client '{ACME}'.",
     "contract-ownership-before-fields"),
    ("create_contract",
     {"value": "x", "status": "x", "start_date": "2026-01-02", "end_date": "2026-01-01"},
     "Contract value must be numeric.", "contract-fields-before-date-order"),
    (DOC, {"entity_type": "Contact", "entity_id": NO_SUCH, "file_name": "a.exe"},
     f"Document entity type must be one of: {DOC_TYPES}.", "document-type-first"),
    (DOC, {"entity_id": NO_SUCH, "file_name": "a.exe"},
     f"Opportunity not found with ID '{NO_SUCH}'.", "document-target-before-file-name"),
    (DOC, {"file_name": "a#.exe", "file_url": "ftp://x"}, FILE_CHARS,
     "document-file-name-before-url"),
    ("add_note", {"entity_type": "Company", "entity_id": NO_SUCH, "content": ""},
     f"Note entity type must be one of: {NOTE_TYPES}.", "note-type-first"),
    ("add_note", {"entity_id": NO_SUCH, "content": ""},
     f"Client not found with ID '{NO_SUCH}'.", "note-target-before-content"),
    ("add_note", {"content": "", "created_by": 5}, f"Note content {BLANK}",
     "note-content-before-optional"),
    ("modify_opportunity", {"opportunity_id": NO_SUCH, "updates": {"bogus": 1, "amount": 0}},
     f"Opportunity not found with ID '{NO_SUCH}'.", "modify-record-first"),
    ("modify_opportunity", {"opportunity_id": WON_OPP, "updates": {"name": "", "stage": "x"}},
     "Cannot modify closed opportunity fields ['stage'] while stage is 'Closed-Won'.",
     "modify-guard-before-fields"),
    ("modify_opportunity", {"opportunity_id": OPEN_OPP, "updates": {"name": "", "bogus": 1}},
     "Opportunity has no field named 'bogus'.", "modify-field-names-before-values"),
    ("modify_opportunity",
     {"opportunity_id": OPEN_OPP, "updates": {"opportunity_id": NO_SUCH, "amount": 0}},
     "Opportunity field 'opportunity_id' cannot be modified.", "modify-fixed-before-values"),
    ("modify_client",
     {"client_id": ACME_ANALYTICS, "updates": {"email": "procurement@acmecorp.com", "status": "x"}},
     f"Client status update must be one of: {CLIENT_STATUSES}.", "modify-values-before-unique"),
    ("modify_client", {"client_id": NO_SUCH, "updates": {}},
     "Must provide either updates dict or keyword args.", "empty-updates-before-lookup"),
    ("modify_quote", {"updates": {"bogus": 1}}, "modify_quote requires 'quote_id'.",
     "required-argument-before-fields"),
]
# fmt: on


@pytest.mark.parametrize(
    ("tool", "args", "message"), [pytest.param(t, a, m, id=i) for t, a, m, i in ORDER_CASES]
)
def test_order_of_checks(
    crm: CRM, store: Store, tool: str, args: dict[str, Any], message: str
) -> None:
    full = args if tool.startswith("modify_") else args_for(tool, args)
    assert_fails(crm, store, tool, full, message)


# == named API ===========================================================================
def test_named_methods_follow_the_spec_signatures(crm: CRM) -> None:
    """Positional arguments bind in the order of the spec's method signatures."""

    def fields(record: dict[str, Any], names: str) -> list[Any]:
        return [record[n] for n in names.split()]

    client = crm.create_new_client(
        "Positional Inc", "pos@example.com", "Prospect", "Retail", "555-0199", "1 Main", "Sam"
    )
    assert fields(client, "name email status industry phone address owner") == [
        "Positional Inc", "pos@example.com", "Prospect", "Retail", "555-0199", "1 Main", "Sam"
    ]  # fmt: skip
    contact = crm.create_new_contact("Ada", "Lovelace", ACME, "CTO", "ada@x.test", "555", "n")
    assert fields(contact, "first_name last_name client_id title email phone notes") == [
        "Ada", "Lovelace", ACME, "CTO", "ada@x.test", "555", "n"
    ]  # fmt: skip
    opp = crm.create_new_opportunity("Deal", ACME, 5000, "Proposal", "2026-01-01", 40, "Kim", "hot")
    assert fields(opp, "name client_id amount stage close_date probability owner notes") == [
        "Deal", ACME, 5000.0, "Proposal", "2026-01-01", 40, "Kim", "hot"
    ]  # fmt: skip
    oid = opp["opportunity_id"]
    quote = crm.create_quote(oid, 100, "Draft", "v1", "2026-02-01", "PX")
    assert fields(quote, "opportunity_id amount status version valid_until quote_prefix") == [
        oid, 100.0, "Draft", "v1", "2026-02-01", "PX"
    ]  # fmt: skip
    url = "https://docs.example.com/c.pdf"
    contract = crm.create_contract(ACME, oid, "2026-01-01", "2026-12-31", 5, "Active", url)
    assert fields(contract, "opportunity_id start_date end_date value status document_url") == [
        oid, "2026-01-01", "2026-12-31", 5.0, "Active", url
    ]  # fmt: skip
    doc = crm.upload_document("Quote", quote["quote_id"], "q.pdf", "Sam", url)
    assert fields(doc, "entity_type entity_id file_name uploaded_by file_url") == [
        "Quote", quote["quote_id"], "q.pdf", "Sam", url
    ]  # fmt: skip
    note = crm.add_note("Contract", contract["contract_id"], "signed", "Sam")
    assert fields(note, "entity_type entity_id content created_by") == [
        "Contract", contract["contract_id"], "signed", "Sam"
    ]  # fmt: skip
    assert crm.modify_quote(quote["quote_id"], {"version": "v2"})["version"] == "v2"
    assert crm.compare_quotes([quote["quote_id"]])[0]["quote_id"] == quote["quote_id"]


def test_named_methods_reject_datetime_close_date(crm: CRM, store: Store) -> None:
    before = seed_dump(store)
    with pytest.raises(CrmError) as info:
        crm.create_new_opportunity(
            name="T",
            client_id=ACME,
            amount=5,
            stage="Proposal",
            close_date=datetime(2026, 1, 1, 12),
        )
    assert str(info.value) == f"Close date {ISO}"
    assert repr(store.dump()) == before


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(
            lambda c: c.cancel_quote(QUOTE, QUOTE),
            "cancel_quote takes at most 1 positional arguments.",
            id="too-many",
        ),
        pytest.param(
            lambda c: c.cancel_quote(QUOTE, quote_id=QUOTE),
            "cancel_quote got multiple values for argument 'quote_id'.",
            id="twice",
        ),
        pytest.param(lambda c: c.delete_quote(), "delete_quote requires 'quote_id'.", id="missing"),
        pytest.param(
            lambda c: c.clone_opportunity(OPEN_OPP, deep=True),
            "clone_opportunity got an unexpected argument 'deep'.",
            id="unexpected",
        ),
    ],
)
def test_named_method_argument_errors(crm: CRM, store: Store, call: Any, message: str) -> None:
    before = seed_dump(store)
    with pytest.raises(CrmError) as info:
        call(crm)
    assert str(info.value) == message
    assert repr(store.dump()) == before


# == hostile values never leak a foreign exception =========================================
HOSTILE: list[Any] = [
    None, "", "x", -1, math.nan, True, [], {"a": 1}, "\x00", "\ud800", 10**30, "A" * 3000,
    "' OR 1=1 --", 2**63, "😀",
]  # fmt: skip


@pytest.mark.parametrize("tool", [t.name for t in TOOLS])
def test_hostile_values_only_raise_crm_errors(crm: CRM, store: Store, tool: str) -> None:
    """Every argument (and every updates field) set to odd values: the call succeeds or
    raises CrmError with a CRM message, never a psycopg/TypeError/ValueError text."""
    spec = BY_TOOL[tool]
    names = list(spec.param_names)
    if spec.extra == "criteria":
        names = [sf.name for sf in spec.search] + ["criteria"]
    entity = spec.entity
    field_names = [f.name for f in entity.fields] if spec.extra == "updates" and entity else []
    seed = seed_dump(store)
    for name in names + field_names:
        for value in HOSTILE:
            args = dict(VALID[tool])
            if name in field_names:
                args["updates"] = {name: value}
            else:
                args[name] = value
            try:
                crm.call(tool, args)
            except CrmError as exc:
                assert "database" not in str(exc).lower(), (name, value, str(exc))
                assert len(str(exc)) < 600
            store.reset()
    assert repr(store.dump()) == seed
