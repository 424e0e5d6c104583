"""Conformance: atomicity, cascades, lifecycle tools, read tools, helpers and JSON results.

Expected values are computed from the seed world's JSON file (which is written in the
same JSON form the tools return), so a record a tool returns must equal its seed text.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from pytest_crmbench.crm import CRM, CrmError, FixedClock, Store
from pytest_crmbench.crm.entities import BY_TABLE, LOAD_ORDER
from pytest_crmbench.crm.seed import SeedWorld
from pytest_crmbench.locations import data_file

pytestmark = pytest.mark.conformance

ACME = "c8660634-6723-5b33-aae4-0771ee5825af"
ACME_ANALYTICS = "2dcdb658-ffea-5c21-80f6-a4c53140523f"
OPEN_OPP = "68b0516d-1470-507e-9243-85e46ed26899"  # Acme Corporation – Data Platform Renewal
WON_OPP = "178b12ec-ad1a-56a8-ac51-5929af80f00a"
QUOTE = "cdac9c79-32ea-5aea-87e1-49a2813b3ff2"  # Sent, on OPEN_OPP, with a document
LINDA_CHEN = "3ec2d84f-320d-5579-9c6f-adb046513da4"
NO_SUCH = "00000000-0000-4000-8000-000000000000"
NOW = "2025-10-01T09:00:00+00:00"  # the fixture clock: reference date, 09:00 UTC

DOC_TARGETS = {
    "Opportunity": "opportunities",
    "Contract": "contracts",
    "Quote": "quotes",
    "Client": "clients",
}
NOTE_TARGETS = {**DOC_TARGETS, "Contact": "contacts"}


@cache
def raw() -> dict[str, Any]:
    """The seed world exactly as stored in the project's data file (JSON values)."""
    with data_file("seed_world.json").open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def rows(table: str) -> list[dict[str, Any]]:
    return copy.deepcopy(raw()[table])


def by_id(table: str, key: str) -> dict[str, Any]:
    pk = BY_TABLE[table].key
    return next(r for r in rows(table) if r[pk] == key)


def snap(store: Store) -> str:
    return repr(store.dump())


def assert_no_orphans(dump: dict[str, list[dict[str, Any]]]) -> None:
    """Every foreign key and every document/note target resolves."""
    ids = {t: {r[BY_TABLE[t].key] for r in dump[t]} for t in LOAD_ORDER}
    for r in dump["contacts"]:
        assert r["client_id"] in ids["clients"]
    for r in dump["opportunities"]:
        assert r["client_id"] in ids["clients"]
    for r in dump["quotes"]:
        assert r["opportunity_id"] in ids["opportunities"]
    opps = {r["opportunity_id"]: r for r in dump["opportunities"]}
    for r in dump["contracts"]:
        assert r["client_id"] in ids["clients"]
        if r["opportunity_id"] is not None:
            assert opps[r["opportunity_id"]]["client_id"] == r["client_id"]
    for r in dump["companies"]:
        assert set(r["contacts"]) <= ids["contacts"]
    for table, targets in (("documents", DOC_TARGETS), ("notes", NOTE_TARGETS)):
        for r in dump[table]:
            assert r["entity_id"] in ids[targets[r["entity_type"]]], (table, r)


def expected_after_delete(
    dump: dict[str, list[dict[str, Any]]], opp: str | None, quotes: set[str]
) -> dict[str, list[dict[str, Any]]]:
    """The spec's cascade applied to a dump: what deleting ``opp`` (or ``quotes``) leaves."""
    dump = copy.deepcopy(dump)
    if opp is not None:
        quotes = quotes | {q["quote_id"] for q in dump["quotes"] if q["opportunity_id"] == opp}
    targets = {("Quote", q) for q in quotes}
    if opp is not None:
        targets.add(("Opportunity", opp))
        dump["opportunities"] = [r for r in dump["opportunities"] if r["opportunity_id"] != opp]
        for r in dump["contracts"]:
            if r["opportunity_id"] == opp:
                r["opportunity_id"] = None
    dump["quotes"] = [r for r in dump["quotes"] if r["quote_id"] not in quotes]
    for table in ("documents", "notes"):
        dump[table] = [r for r in dump[table] if (r["entity_type"], r["entity_id"]) not in targets]
    return dump


# == atomicity ===========================================================================
@pytest.mark.parametrize(
    ("tool", "args", "message"),
    [
        pytest.param(
            "modify_opportunity",
            {"opportunity_id": OPEN_OPP, "updates": {"name": "Renamed", "amount": -1}},
            "Opportunity amount update must be greater than zero.",
            id="good-then-bad",
        ),
        pytest.param(
            "modify_opportunity",
            {"opportunity_id": OPEN_OPP, "updates": {"probability": 500, "owner": "Kim"}},
            "Probability must be between 1 and 99.",
            id="bad-then-good",
        ),
        pytest.param(
            "modify_opportunity",
            {"opportunity_id": OPEN_OPP, "updates": {"notes": "n", "bogus": 1}},
            "Opportunity has no field named 'bogus'.",
            id="good-then-unknown",
        ),
        pytest.param(
            "modify_client",
            {
                "client_id": ACME_ANALYTICS,
                "updates": {"name": "New", "email": "PROCUREMENT@acmecorp.com"},
            },
            "Client already exists with email 'PROCUREMENT@acmecorp.com'.",
            id="good-then-duplicate-email",
        ),
        pytest.param(
            "modify_contact",
            {"contact_id": LINDA_CHEN, "updates": {"title": "CEO", "email": "x@"}},
            "Contact email must be a valid email address.",
            id="contact-good-then-bad",
        ),
        pytest.param(
            "modify_quote",
            {"quote_id": QUOTE, "updates": {"status": "Approved", "amount": "lots"}},
            "Quote amount update must be numeric.",
            id="quote-good-then-bad",
        ),
        pytest.param(
            "modify_quote",
            {"quote_id": QUOTE, "updates": {"version": "v3", "created_date": NOW}},
            "Quote field 'created_date' cannot be modified.",
            id="quote-good-then-fixed",
        ),
        pytest.param(
            "compare_quote_details",
            {"quote_ids": [QUOTE, NO_SUCH]},
            f"Quote not found with ID '{NO_SUCH}'.",
            id="read-with-missing-id",
        ),
    ],
)
def test_failing_modify_changes_nothing(
    crm: CRM, store: Store, tool: str, args: dict[str, Any], message: str
) -> None:
    before = snap(store)
    with pytest.raises(CrmError) as info:
        crm.call(tool, args)
    assert str(info.value) == message
    assert snap(store) == before


def test_failing_call_in_the_middle_of_a_sequence(crm: CRM, store: Store) -> None:
    client = crm.create_new_client(name="Seq Co", email="seq@example.com", status="Prospect")
    opp = crm.create_new_opportunity(
        name="Seq Deal", client_id=client["client_id"], amount=1000, stage="Prospecting"
    )
    middle = snap(store)
    failing = [
        (
            "create_quote",
            {"opportunity_id": opp["opportunity_id"], "amount": "120K", "status": "Draft"},
        ),
        (
            "modify_opportunity",
            {"opportunity_id": opp["opportunity_id"], "updates": {"name": "X", "stage": "Won"}},
        ),
        ("create_new_client", {"name": "Dup", "email": "SEQ@example.com", "status": "Active"}),
        (
            "upload_document",
            {
                "entity_type": "Opportunity",
                "entity_id": opp["opportunity_id"],
                "file_name": "x.exe",
            },
        ),
        ("delete_quote", {"quote_id": NO_SUCH}),
    ]
    for tool, args in failing:
        with pytest.raises(CrmError):
            crm.call(tool, args)
        assert snap(store) == middle, tool
    quote = crm.create_quote(opportunity_id=opp["opportunity_id"], amount=900, status="Sent")
    after = store.dump()
    assert [q["quote_id"] for q in after["quotes"]][-1] == quote["quote_id"]
    assert len(after["quotes"]) == len(raw()["quotes"]) + 1
    assert after["clients"][-1]["client_id"] == client["client_id"]
    assert after["opportunities"][-1]["opportunity_id"] == opp["opportunity_id"]
    assert_no_orphans(after)


@pytest.fixture
def broken(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Make the store's n-th write of a kind fail, as a crash in the middle of a call would."""
    plan: dict[str, int] = {}

    def wrap(kind: str) -> None:
        original = getattr(store, kind)

        def failing(*args: Any, **kwargs: Any) -> Any:
            if kind in plan:
                plan[kind] -= 1
                if plan[kind] <= 0:
                    raise RuntimeError(f"simulated {kind} failure")
            return original(*args, **kwargs)

        monkeypatch.setattr(store, kind, failing)

    for kind in ("insert", "update", "delete"):
        wrap(kind)
    yield plan


@pytest.mark.parametrize(
    ("tool", "args", "kind", "nth"),
    [
        pytest.param(
            "delete_opportunity",
            {"opportunity_id": WON_OPP},
            "update",
            1,
            id="delete-opportunity-fails-unlinking-contract",
        ),
        pytest.param(
            "delete_opportunity",
            {"opportunity_id": WON_OPP},
            "delete",
            3,
            id="delete-opportunity-fails-after-quote-cascade",
        ),
        pytest.param(
            "delete_opportunity",
            {"opportunity_id": OPEN_OPP},
            "delete",
            5,
            id="delete-opportunity-fails-late",
        ),
        pytest.param(
            "delete_quote", {"quote_id": QUOTE}, "delete", 2, id="delete-quote-fails-after-document"
        ),
    ],
)
def test_failure_after_partial_writes_rolls_back(
    crm: CRM,
    store: Store,
    broken: dict[str, int],
    tool: str,
    args: dict[str, Any],
    kind: str,
    nth: int,
) -> None:
    before = snap(store)
    broken[kind] = nth
    with pytest.raises(RuntimeError, match="simulated"):
        crm.call(tool, args)
    assert snap(store) == before
    broken.clear()
    crm.call(tool, args)  # the store is still usable (no poisoned transaction)
    assert snap(store) != before
    assert_no_orphans(store.dump())


# == cascades ============================================================================
CASCADE_OPPS = [
    pytest.param(WON_OPP, id="acme-mes-won-with-contract"),
    pytest.param(OPEN_OPP, id="acme-renewal-open-quotes-docs-notes"),
    pytest.param("336fc8fb", id="harborview-three-quotes"),
    pytest.param("f2270793", id="acme-platform-quote-note"),
    pytest.param("2deb740c", id="copperline-contract-docs"),
    pytest.param("e885a0be", id="oakmont-quote-notes"),
    pytest.param("27ca5941", id="kestrel-nothing-attached"),
]


@pytest.fixture
def seed_ids(world: SeedWorld) -> dict[str, set[str]]:
    return {t: {r[BY_TABLE[t].key] for r in world.tables[t]} for t in LOAD_ORDER}


def _resolve(prefix_or_id: str, table: str) -> str:
    """A seed id from its first 8 characters (readable tables of cases)."""
    pk = BY_TABLE[table].key
    matches = [r[pk] for r in raw()[table] if r[pk].startswith(prefix_or_id[:8])]
    assert len(matches) == 1
    return matches[0]


@pytest.mark.parametrize("opp", CASCADE_OPPS)
def test_delete_opportunity_cascade(crm: CRM, store: Store, opp: str) -> None:
    opp = _resolve(opp, "opportunities")
    before = store.dump()
    result = crm.delete_opportunity(opportunity_id=opp)
    assert result == {"deleted": True, "opportunity_id": opp}
    after = store.dump()
    assert repr(after) == repr(expected_after_delete(before, opp, set()))
    assert_no_orphans(after)
    with pytest.raises(CrmError, match=f"^Opportunity not found with ID '{opp}'.$"):
        crm.view_opportunity_details(opp)


def test_delete_opportunity_cascade_details(crm: CRM, store: Store) -> None:
    """The Acme MES deal: both quotes, their documents, the deal's own document go; the
    contract stays, unlinked, with its own document."""
    contract = "3cd90a9f-5c01-5d95-81b4-61478a306e65"
    crm.delete_opportunity(WON_OPP)
    dump = store.dump()
    assert {q["quote_id"][:8] for q in dump["quotes"]}.isdisjoint({"a5b9d513", "0c19df3e"})
    names = {d["file_name"] for d in dump["documents"]}
    assert "Acme_MES_Integration_SOW_draft.docx" not in names
    assert "ACME-Q-MES-v2.pdf" not in names
    assert "ACME-2024-001-MES-signed.pdf" in names
    kept = store.get("contracts", contract)
    assert kept is not None and kept["opportunity_id"] is None
    assert kept["client_id"] == ACME


def test_delete_every_opportunity_and_every_quote(crm: CRM, store: Store) -> None:
    """Each seed opportunity and each seed quote, deleted alone, cascades exactly."""
    seed = store.dump()
    for opp in [r["opportunity_id"] for r in seed["opportunities"]]:
        crm.delete_opportunity(opp)
        after = store.dump()
        assert repr(after) == repr(expected_after_delete(seed, opp, set())), opp
        assert_no_orphans(after)
        store.reset()
    for quote in [r["quote_id"] for r in seed["quotes"]]:
        assert crm.delete_quote(quote) == {"deleted": True, "quote_id": quote}
        assert repr(store.dump()) == repr(expected_after_delete(seed, None, {quote})), quote
        store.reset()
    assert repr(store.dump()) == repr(seed)


@pytest.mark.parametrize(
    "quote",
    [
        pytest.param(QUOTE, id="with-document"),
        pytest.param("120cc7b9", id="with-note"),
        pytest.param("0c19df3e", id="approved-with-document"),
        pytest.param("c68a3b49", id="nothing-attached"),
    ],
)
def test_delete_quote_cascade(crm: CRM, store: Store, quote: str) -> None:
    quote = _resolve(quote, "quotes")
    before = store.dump()
    result = crm.call("delete_quote", {"quote_id": quote.upper()})
    assert result == {"deleted": True, "quote_id": quote}
    after = store.dump()
    assert repr(after) == repr(expected_after_delete(before, None, {quote}))
    assert_no_orphans(after)


def test_cascade_over_records_created_in_the_conversation(crm: CRM, store: Store) -> None:
    client = crm.create_new_client(name="Cascade Co", email="c@cascade.test", status="Active")
    cid = client["client_id"]
    opp = crm.create_new_opportunity(name="Deal", client_id=cid, amount=10, stage="Proposal")
    oid = opp["opportunity_id"]
    q1 = crm.create_quote(opportunity_id=oid, amount=5, status="Draft")["quote_id"]
    q2 = crm.create_quote(opportunity_id=oid, amount=6, status="Sent")["quote_id"]
    contract = crm.create_contract(client_id=cid, opportunity_id=oid)["contract_id"]
    crm.upload_document(entity_type="Opportunity", entity_id=oid, file_name="a.pdf")
    crm.upload_document(entity_type="Quote", entity_id=q1, file_name="q.pdf")
    crm.upload_document(entity_type="Contract", entity_id=contract, file_name="c.pdf")
    crm.upload_document(entity_type="Client", entity_id=cid, file_name="k.pdf")
    crm.add_note(entity_type="Quote", entity_id=q2, content="note on q2")
    crm.add_note(entity_type="Opportunity", entity_id=oid, content="note on opp")
    crm.add_note(entity_type="Contract", entity_id=contract, content="note on contract")
    crm.add_note(entity_type="Client", entity_id=cid, content="note on client")
    before = store.dump()
    crm.delete_opportunity(oid)
    after = store.dump()
    assert repr(after) == repr(expected_after_delete(before, oid, set()))
    assert [d["file_name"] for d in after["documents"][-2:]] == ["c.pdf", "k.pdf"]
    assert [n["content"] for n in after["notes"][-2:]] == ["note on contract", "note on client"]
    assert store.get("contracts", contract)["opportunity_id"] is None  # type: ignore[index]
    assert_no_orphans(after)


# == cancel_quote ========================================================================
def _first_quote(status: str) -> str:
    return next(q["quote_id"] for q in raw()["quotes"] if q["status"] == status)


@pytest.mark.parametrize("status", ["Draft", "Sent", "Approved", "Rejected", "Canceled"])
def test_cancel_quote_from_every_status(crm: CRM, store: Store, status: str) -> None:
    quote = _first_quote(status)
    before = store.dump()
    result = crm.cancel_quote(quote_id=quote)
    assert result == {**by_id("quotes", quote), "status": "Canceled"}
    expected = copy.deepcopy(before)
    for q in expected["quotes"]:
        if q["quote_id"] == quote:
            q["status"] = "Canceled"
    assert repr(store.dump()) == repr(expected)
    again = crm.call("cancel_quote", {"quote_id": quote}, agent=True)
    assert again == result
    assert repr(store.dump()) == repr(expected)


def test_cancel_a_created_quote(crm: CRM) -> None:
    quote = crm.create_quote(opportunity_id=OPEN_OPP, amount=12.5, status="Approved")
    result = crm.cancel_quote(quote["quote_id"])
    assert result == {**quote, "status": "Canceled"}
    assert crm.quote_details(quote["quote_id"])["status"] == "Canceled"


# == clone_opportunity ===================================================================
COPIED = ("client_id", "stage", "amount", "close_date", "owner", "probability", "notes")


@pytest.mark.parametrize(
    "opp",
    [
        pytest.param(OPEN_OPP, id="open-with-quotes-docs-notes"),
        pytest.param(WON_OPP, id="closed-won-past-close-date"),
        pytest.param("1315fd9d-a02f-5f1b-bd24-dd13bb61a665", id="closed-lost"),
        pytest.param("27ca5941-a484-542a-a0e3-f02600fb1e10", id="null-probability"),
    ],
)
def test_clone_opportunity(crm: CRM, store: Store, seed_ids: dict[str, set[str]], opp: str) -> None:
    source = by_id("opportunities", opp)
    before = store.dump()
    clone = crm.clone_opportunity(opportunity_id=opp)
    assert clone["name"] == f"{source['name']} (Clone)"
    assert {k: clone[k] for k in COPIED} == {k: source[k] for k in COPIED}
    assert clone["opportunity_id"] != opp
    assert clone["opportunity_id"] not in seed_ids["opportunities"]
    assert str(uuid.UUID(clone["opportunity_id"])) == clone["opportunity_id"]
    assert clone["created_at"] == NOW
    assert set(clone) == set(source)
    after = store.dump()
    assert after["opportunities"][:-1] == before["opportunities"]  # source unchanged
    assert after["opportunities"][-1] == store.get("opportunities", clone["opportunity_id"])
    for table in LOAD_ORDER:
        if table != "opportunities":
            assert after[table] == before[table], table
    details = crm.view_opportunity_details(clone["opportunity_id"])
    assert (details["quotes"], details["contracts"], details["documents"], details["notes"]) == (
        [],
        [],
        [],
        [],
    )


def test_clone_of_a_clone(crm: CRM) -> None:
    first = crm.clone_opportunity(OPEN_OPP)
    second = crm.clone_opportunity(first["opportunity_id"])
    assert second["name"] == "Acme Corporation – Data Platform Renewal (Clone) (Clone)"
    assert len({OPEN_OPP, first["opportunity_id"], second["opportunity_id"]}) == 3


# == ids and timestamps ==================================================================
class ListIds:
    def __init__(self, ids: list[str]) -> None:
        self.ids = list(ids)

    def new_id(self) -> str:
        return self.ids.pop(0)


@pytest.mark.parametrize(
    ("tool", "args", "key"),
    [
        ("create_new_client", {"name": "N", "email": "n@n.test", "status": "Active"}, "client_id"),
        (
            "create_new_contact",
            {"first_name": "A", "last_name": "B", "client_id": ACME},
            "contact_id",
        ),
        (
            "create_new_opportunity",
            {"name": "N", "client_id": ACME, "amount": 1, "stage": "Proposal"},
            "opportunity_id",
        ),
        ("create_quote", {"opportunity_id": OPEN_OPP, "amount": 1, "status": "Draft"}, "quote_id"),
        ("create_contract", {"client_id": ACME}, "contract_id"),
        (
            "upload_document",
            {"entity_type": "Client", "entity_id": ACME, "file_name": "a.txt"},
            "document_id",
        ),
        ("add_note", {"entity_type": "Client", "entity_id": ACME, "content": "c"}, "note_id"),
        ("clone_opportunity", {"opportunity_id": OPEN_OPP}, "opportunity_id"),
    ],
)
def test_new_ids_come_from_the_id_factory(
    store: Store,
    world: SeedWorld,
    seed_ids: dict[str, set[str]],
    tool: str,
    args: dict[str, Any],
    key: str,
) -> None:
    made = str(uuid.uuid4())
    crm = CRM(store, clock=FixedClock(world.reference_date), ids=ListIds([made]))
    result = crm.call(tool, args)
    assert result[key] == made
    table = next(t for t in LOAD_ORDER if BY_TABLE[t].key == key)
    assert made not in seed_ids[table]
    stamps = [f.name for f in BY_TABLE[table].fields if f.kind == "timestamp"]
    for stamp in stamps:
        assert result[stamp] == NOW


def test_created_ids_are_new_distinct_uuids(crm: CRM, seed_ids: dict[str, set[str]]) -> None:
    made = [
        crm.create_new_client(name=f"C{i}", email=f"c{i}@new.test", status="Active")
        for i in range(3)
    ]
    ids = [c["client_id"] for c in made]
    assert len(set(ids)) == 3
    assert not set(ids) & seed_ids["clients"]
    for i in ids:
        assert str(uuid.UUID(i)) == i


# == read tools ==========================================================================
def expected_details(opp: str) -> dict[str, Any]:
    record = by_id("opportunities", opp)
    return {
        **record,
        "client": by_id("clients", record["client_id"]),
        "quotes": [q for q in rows("quotes") if q["opportunity_id"] == opp],
        "contracts": [c for c in rows("contracts") if c["opportunity_id"] == opp],
        "documents": [
            d
            for d in rows("documents")
            if (d["entity_type"], d["entity_id"]) == ("Opportunity", opp)
        ],
        "notes": [
            n for n in rows("notes") if (n["entity_type"], n["entity_id"]) == ("Opportunity", opp)
        ],
    }


DETAIL_OPPS = [
    pytest.param(OPEN_OPP, id="acme-renewal"),
    pytest.param(WON_OPP, id="acme-mes"),
    pytest.param("336fc8fb", id="harborview"),
    pytest.param("27ca5941", id="nothing-attached"),
]


@pytest.mark.parametrize("opp", DETAIL_OPPS)
def test_view_opportunity_details(crm: CRM, opp: str) -> None:
    opp = _resolve(opp, "opportunities")
    result = crm.call("view_opportunity_details", {"opportunity_id": opp.upper()}, agent=True)
    assert result == expected_details(opp)
    assert crm.call("opportunity_details", {"opportunity_id": opp}, agent=True) == result
    assert crm.opportunity_details(opp) == crm.view_opportunity_details(opp)


def test_view_opportunity_details_sees_new_records(crm: CRM) -> None:
    quote = crm.create_quote(opportunity_id=OPEN_OPP, amount=1, status="Draft")
    note = crm.add_note(entity_type="Opportunity", entity_id=OPEN_OPP, content="new")
    details = crm.view_opportunity_details(OPEN_OPP)
    assert details["quotes"][-1] == quote
    assert details["notes"][-1] == note


@pytest.mark.parametrize("quote", ["cdac9c79", "120cc7b9", "c68a3b49", "0c19df3e"])
def test_quote_details(crm: CRM, quote: str) -> None:
    quote = _resolve(quote, "quotes")
    record = by_id("quotes", quote)
    expected = {
        **record,
        "opportunity": by_id("opportunities", record["opportunity_id"]),
        "documents": [
            d for d in rows("documents") if (d["entity_type"], d["entity_id"]) == ("Quote", quote)
        ],
        "notes": [
            n for n in rows("notes") if (n["entity_type"], n["entity_id"]) == ("Quote", quote)
        ],
    }
    assert crm.quote_details(quote_id=quote) == expected


ORDERS = [
    pytest.param(["cdac9c79", "73e40089"], id="two"),
    pytest.param(["73e40089", "cdac9c79"], id="two-reversed"),
    pytest.param(["f89084e5", "a5b9d513", "508104f0"], id="three-unsorted"),
    pytest.param(["c68a3b49"], id="one"),
    pytest.param(["c68a3b49", "c68a3b49"], id="repeated"),
]


@pytest.mark.parametrize("prefixes", ORDERS)
def test_compare_quotes_in_the_given_order(crm: CRM, prefixes: list[str]) -> None:
    ids = [_resolve(p, "quotes") for p in prefixes]
    expected = [by_id("quotes", i) for i in ids]
    assert crm.call("compare_quotes", {"quote_ids": ids}, agent=True) == expected
    details = crm.compare_quote_details(quote_ids=[i.upper() for i in ids])
    assert details == {
        "quotes": expected,
        "amounts": {q["quote_id"]: q["amount"] for q in expected},
        "statuses": {q["quote_id"]: q["status"] for q in expected},
        "total_amount": sum(q["amount"] for q in expected),
    }
    assert list(details) == ["quotes", "amounts", "statuses", "total_amount"]


@pytest.mark.parametrize("tool", ["compare_quotes", "compare_quote_details"])
@pytest.mark.parametrize(
    ("quote_ids", "message"),
    [
        pytest.param([QUOTE, NO_SUCH], f"Quote not found with ID '{NO_SUCH}'.", id="missing-last"),
        pytest.param(["nope", QUOTE], "Quote not found with ID 'nope'.", id="malformed-first"),
        pytest.param([QUOTE, ACME], f"Quote not found with ID '{ACME}'.", id="client-id"),
        pytest.param([], "Quote ids must not be empty.", id="empty"),
        pytest.param(QUOTE, "Quote ids must be provided as a list.", id="not-a-list"),
    ],
)
def test_compare_quotes_errors(
    crm: CRM, store: Store, tool: str, quote_ids: Any, message: str
) -> None:
    before = snap(store)
    with pytest.raises(CrmError) as info:
        crm.call(tool, {"quote_ids": quote_ids})
    assert str(info.value) == message
    assert snap(store) == before


STAGE_ORDER = [
    "Prospecting",
    "Qualification",
    "Proposal",
    "Negotiation",
    "Closed-Won",
    "Closed-Lost",
]


def expected_summary(opps: list[dict[str, Any]]) -> dict[str, Any]:
    by_stage = {}
    for stage in STAGE_ORDER:
        picked = [o["amount"] for o in opps if o["stage"] == stage]
        if picked:
            by_stage[stage] = {"count": len(picked), "total_amount": sum(picked)}
    owners: dict[str, list[float]] = {}
    for o in opps:
        owners.setdefault(o["owner"] or "Unassigned", []).append(o["amount"])
    return {
        "total_count": len(opps),
        "total_amount": sum(o["amount"] for o in opps),
        "by_stage": by_stage,
        "by_owner": {
            k: {"count": len(v), "total_amount": sum(v)} for k, v in sorted(owners.items())
        },
    }


@pytest.mark.parametrize(
    ("criteria", "predicate"),
    [
        pytest.param({}, lambda o: True, id="all"),
        pytest.param({"stage": "proposal"}, lambda o: o["stage"] == "Proposal", id="stage"),
        pytest.param({"owner": "maya"}, lambda o: o["owner"] == "Maya Patel", id="owner"),
        pytest.param({"client_id": ACME}, lambda o: o["client_id"] == ACME, id="client"),
        pytest.param(
            {"min_amount": 100000, "max_amount": 500000},
            lambda o: 100000 <= o["amount"] <= 500000,
            id="amount-range",
        ),
        pytest.param(
            {"criteria": {"stage": "Negotiation", "owner": "Sofia"}},
            lambda o: o["stage"] == "Negotiation" and o["owner"] == "Sofia Lindqvist",
            id="criteria-object",
        ),
        pytest.param({"name": "no such deal"}, lambda o: False, id="nothing"),
    ],
)
def test_summarize_opportunities(crm: CRM, criteria: dict[str, Any], predicate: Any) -> None:
    result = crm.call("summarize_opportunities", criteria, agent=True)
    expected = expected_summary([o for o in rows("opportunities") if predicate(o)])
    assert result == expected
    assert list(result["by_stage"]) == [s for s in STAGE_ORDER if s in result["by_stage"]]
    assert list(result["by_owner"]) == sorted(result["by_owner"])


def test_summarize_opportunities_all_stages_and_new_records(crm: CRM) -> None:
    result = crm.summarize_opportunities()
    assert list(result["by_stage"]) == STAGE_ORDER
    assert result["total_count"] == len(raw()["opportunities"])
    crm.create_new_opportunity(name="Ownerless", client_id=ACME, amount=5, stage="Proposal")
    crm.create_new_opportunity(
        name="Aaron's", client_id=ACME, amount=7, stage="Proposal", owner="Aaron Abbott"
    )
    result = crm.summarize_opportunities(stage="Proposal")
    assert next(iter(result["by_owner"])) == "Aaron Abbott"
    assert result["by_owner"]["Unassigned"] == {"count": 1, "total_amount": 5.0}
    assert result == expected_summary(
        [o for o in crm.list_opportunities().values() if o["stage"] == "Proposal"]
    )


def test_summarize_opportunities_unknown_field(crm: CRM) -> None:
    allowed = (
        "amount, client_id, close_date, close_date_after, close_date_before, max_amount, "
        "min_amount, name, notes, opportunity_id, owner, probability, stage"
    )
    with pytest.raises(CrmError) as info:
        crm.summarize_opportunities(status="Open")
    assert str(info.value) == (
        f"Unknown search field 'status' for summarize_opportunities (allowed: {allowed})."
    )


def test_quote_prefixes(crm: CRM) -> None:
    expected = sorted({q["quote_prefix"] for q in raw()["quotes"] if q["quote_prefix"]})
    assert crm.call("quote_prefixes", {}, agent=True) == expected
    assert crm.quote_prefixes() == ["ACME", "ENT", "NW", "Q2024", "Q2025", "RNW"]
    crm.create_quote(opportunity_id=OPEN_OPP, amount=1, status="Draft", quote_prefix="AAA")
    crm.create_quote(opportunity_id=OPEN_OPP, amount=1, status="Draft", quote_prefix="  ")
    crm.create_quote(opportunity_id=OPEN_OPP, amount=1, status="Draft", quote_prefix="NW")
    crm.create_quote(opportunity_id=OPEN_OPP, amount=1, status="Draft", quote_prefix="acme")
    assert crm.quote_prefixes() == ["AAA", "ACME", "ENT", "NW", "Q2024", "Q2025", "RNW", "acme"]


# == helpers =============================================================================
LISTS = [
    ("list_clients", "clients"),
    ("list_contacts", "contacts"),
    ("list_opportunities", "opportunities"),
    ("list_quotes", "quotes"),
    ("list_contracts", "contracts"),
    ("list_documents", "documents"),
    ("list_notes", "notes"),
    ("list_companies", "companies"),
]


@pytest.mark.parametrize(("tool", "table"), LISTS)
def test_list_helpers(crm: CRM, tool: str, table: str) -> None:
    pk = BY_TABLE[table].key
    expected = {r[pk]: r for r in rows(table)}
    result = crm.call(tool)
    assert result == expected
    assert list(result) == list(expected)  # creation order
    assert getattr(crm, tool)() == result


def test_summarize_counts(crm: CRM, world: SeedWorld) -> None:
    assert crm.summarize_counts() == world.counts()
    assert list(crm.summarize_counts()) == list(LOAD_ORDER)
    crm.create_new_contact(first_name="A", last_name="B", client_id=ACME)
    crm.delete_quote(QUOTE)
    counts = crm.call("summarize_counts", {})
    assert counts["contacts"] == world.counts()["contacts"] + 1
    assert counts["quotes"] == world.counts()["quotes"] - 1
    assert counts["documents"] == world.counts()["documents"] - 1


@pytest.mark.parametrize(
    "email",
    ["procurement@acmecorp.com", "PROCUREMENT@AcmeCorp.com", "  procurement@acmecorp.com "],
    ids=["same", "other-case", "padded"],
)
def test_ensure_client_gets_existing(crm: CRM, store: Store, email: str) -> None:
    before = snap(store)
    result = crm.ensure_client(name="Whatever", email=email, status="Prospect")
    assert result == by_id("clients", ACME)
    assert snap(store) == before


def test_ensure_client_creates_once(crm: CRM, store: Store) -> None:
    first = crm.ensure_client(
        name="Fresh Co", email="fresh@co.test", status="Prospect", industry="Retail"
    )
    assert (first["name"], first["status"], first["industry"]) == ("Fresh Co", "Prospect", "Retail")
    assert store.dump()["clients"][-1]["client_id"] == first["client_id"]
    second = crm.call(
        "ensure_client", {"name": "Other", "email": "FRESH@co.test", "status": "Active"}
    )
    assert second == first
    assert len(store.find("clients")) == len(raw()["clients"]) + 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            {"email": "bad"}, "Client email must be a valid email address.", id="invalid-email"
        ),
        pytest.param(
            {"status": "active"},
            "Client status must be one of: Active, Inactive, Prospect.",
            id="bad-status-on-create",
        ),
        pytest.param(
            {"name": " "}, "Client name must not be blank or whitespace.", id="blank-name-on-create"
        ),
    ],
)
def test_ensure_client_errors(crm: CRM, store: Store, args: dict[str, Any], message: str) -> None:
    before = snap(store)
    full = {"name": "New", "email": "new@co.test", "status": "Active", **args}
    with pytest.raises(CrmError) as info:
        crm.call("ensure_client", full)
    assert str(info.value) == message
    assert snap(store) == before


# == results are JSON-ready ===============================================================
JSON_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("create_new_client", {"name": "J", "email": "j@j.test", "status": "Active"}),
    ("create_new_contact", {"first_name": "J", "last_name": "K", "client_id": ACME}),
    (
        "create_new_opportunity",
        {
            "name": "J",
            "client_id": ACME,
            "amount": 5,
            "stage": "Proposal",
            "close_date": "2026-01-01",
            "probability": 50.0,
        },
    ),
    (
        "create_quote",
        {"opportunity_id": OPEN_OPP, "amount": 5, "status": "Draft", "valid_until": "2026-01-01"},
    ),
    ("create_contract", {"client_id": ACME, "start_date": "2026-01-01", "value": 3}),
    ("upload_document", {"entity_type": "Client", "entity_id": ACME, "file_name": "j.pdf"}),
    ("add_note", {"entity_type": "Client", "entity_id": ACME, "content": "j"}),
    ("modify_client", {"client_id": ACME, "updates": {"name": "J"}}),
    ("modify_contact", {"contact_id": LINDA_CHEN, "updates": {"title": "J"}}),
    (
        "modify_opportunity",
        {"opportunity_id": OPEN_OPP, "updates": {"amount": 7, "close_date": "2026-02-02"}},
    ),
    ("modify_quote", {"quote_id": QUOTE, "updates": {"amount": 9, "valid_until": "2026-03-03"}}),
    ("delete_opportunity", {"opportunity_id": OPEN_OPP}),
    ("delete_quote", {"quote_id": QUOTE}),
    ("cancel_quote", {"quote_id": QUOTE}),
    ("clone_opportunity", {"opportunity_id": OPEN_OPP}),
    ("client_search", {"name": "acme"}),
    ("contact_search", {"last_name": "chen"}),
    ("opportunity_search", {"client_id": ACME}),
    ("quote_search", {"opportunity_id": OPEN_OPP}),
    ("contract_search", {"client_id": ACME}),
    ("company_search", {}),
    ("view_opportunity_details", {"opportunity_id": OPEN_OPP}),
    ("opportunity_details", {"opportunity_id": WON_OPP}),
    ("quote_details", {"quote_id": QUOTE}),
    ("compare_quotes", {"quote_ids": [QUOTE]}),
    ("compare_quote_details", {"quote_ids": [QUOTE]}),
    ("summarize_opportunities", {}),
    ("quote_prefixes", {}),
    ("ensure_client", {"name": "J", "email": "j2@j.test", "status": "Active"}),
    ("list_opportunities", {}),
    ("list_companies", {}),
    ("summarize_counts", {}),
]
AMOUNT_KEYS = {"amount", "value", "total_amount"}
TIME_KEYS = {"created_date", "created_at", "uploaded_at"}
DATE_KEYS = {"close_date", "valid_until", "start_date", "end_date"}


def _check_json_values(value: Any) -> None:
    if isinstance(value, dict):
        for k, x in value.items():
            assert isinstance(k, str)
            if k in AMOUNT_KEYS and x is not None and not isinstance(x, dict):
                assert type(x) is float, (k, x)
            if k == "probability" and x is not None:
                assert type(x) is int
            if k in TIME_KEYS:
                assert isinstance(x, str) and x.endswith("+00:00") and "T" in x, (k, x)
            if k in DATE_KEYS and x is not None:
                assert isinstance(x, str) and len(x) == 10, (k, x)
            _check_json_values(x)
    elif isinstance(value, list):
        for x in value:
            _check_json_values(x)
    else:
        assert value is None or type(value) in (str, int, float, bool), value


@pytest.mark.parametrize(("tool", "args"), [pytest.param(t, a, id=t) for t, a in JSON_CALLS])
def test_results_are_json_ready(crm: CRM, tool: str, args: dict[str, Any]) -> None:
    result = crm.call(tool, args)
    text = json.dumps(result, allow_nan=False)
    assert json.loads(text) == result
    _check_json_values(result)
    if tool.startswith("delete_"):
        key = next(iter(args))
        assert result == {"deleted": True, key: args[key]}
