"""Conformance: the agent tool catalog, the ``crmbench tools`` command, what agents may
call, and the seed world against the CRM's own rules and the spec's minimums.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import date
from typing import Any

import pytest

from pytest_crmbench.cli import main
from pytest_crmbench.crm import AGENT_TOOLS, BY_TOOL, CRM, TOOLS, CrmError, Store, agent_catalog
from pytest_crmbench.crm import validation as v
from pytest_crmbench.crm.entities import BY_TABLE, LOAD_ORDER
from pytest_crmbench.crm.enums import (
    CLOSED_STAGES,
    ClientStatus,
    CompanyType,
    ContractStatus,
    DocumentEntityType,
    NoteEntityType,
    OpportunityStage,
    QuoteStatus,
    values,
)

pytestmark = pytest.mark.conformance

AGENT_NAMES = [
    "create_new_client", "create_new_contact", "create_new_opportunity", "create_quote",
    "create_contract", "upload_document", "add_note",
    "modify_client", "modify_contact", "modify_opportunity", "modify_quote",
    "delete_opportunity", "delete_quote", "cancel_quote", "clone_opportunity",
    "client_search", "contact_search", "opportunity_search", "quote_search", "contract_search",
    "company_search",
    "view_opportunity_details", "opportunity_details", "quote_details", "compare_quotes",
    "compare_quote_details", "summarize_opportunities", "quote_prefixes",
]  # fmt: skip
HELPER_NAMES = [
    "ensure_client", "list_clients", "list_contacts", "list_opportunities", "list_quotes",
    "list_contracts", "list_documents", "list_notes", "list_companies", "summarize_counts",
]  # fmt: skip

# The spec's signatures: required arguments, then optional ones.
SIGNATURES: dict[str, tuple[list[str], list[str]]] = {
    "create_new_client": (["name", "email", "status"], ["industry", "phone", "address", "owner"]),
    "create_new_contact": (
        ["first_name", "last_name", "client_id"],
        ["title", "email", "phone", "notes"],
    ),
    "create_new_opportunity": (
        ["name", "client_id", "amount", "stage"],
        ["close_date", "probability", "owner", "notes"],
    ),
    "create_quote": (
        ["opportunity_id", "amount", "status"],
        ["version", "valid_until", "quote_prefix"],
    ),
    "create_contract": (
        ["client_id"],
        ["opportunity_id", "start_date", "end_date", "value", "status", "document_url"],
    ),
    "upload_document": (["entity_type", "entity_id", "file_name"], ["uploaded_by", "file_url"]),
    "add_note": (["entity_type", "entity_id", "content"], ["created_by"]),
    "modify_client": (["client_id", "updates"], []),
    "modify_contact": (["contact_id", "updates"], []),
    "modify_opportunity": (["opportunity_id", "updates"], []),
    "modify_quote": (["quote_id", "updates"], []),
    "delete_opportunity": (["opportunity_id"], []),
    "delete_quote": (["quote_id"], []),
    "cancel_quote": (["quote_id"], []),
    "clone_opportunity": (["opportunity_id"], []),
    "view_opportunity_details": (["opportunity_id"], []),
    "opportunity_details": (["opportunity_id"], []),
    "quote_details": (["quote_id"], []),
    "compare_quotes": (["quote_ids"], []),
    "compare_quote_details": (["quote_ids"], []),
    "quote_prefixes": ([], []),
}

# Where each enum must appear in full: (tool, path to the property).
ENUM_PLACES: list[tuple[Any, str, tuple[str, ...]]] = [
    (ClientStatus, "create_new_client", ("status",)),
    (ClientStatus, "modify_client", ("updates", "status")),
    (ClientStatus, "client_search", ("status",)),
    (OpportunityStage, "create_new_opportunity", ("stage",)),
    (OpportunityStage, "modify_opportunity", ("updates", "stage")),
    (OpportunityStage, "opportunity_search", ("stage",)),
    (OpportunityStage, "summarize_opportunities", ("stage",)),
    (QuoteStatus, "create_quote", ("status",)),
    (QuoteStatus, "modify_quote", ("updates", "status")),
    (QuoteStatus, "quote_search", ("status",)),
    (ContractStatus, "create_contract", ("status",)),
    (ContractStatus, "contract_search", ("status",)),
    (CompanyType, "company_search", ("type",)),
    (DocumentEntityType, "upload_document", ("entity_type",)),
    (NoteEntityType, "add_note", ("entity_type",)),
]


def schema_of(tool: str) -> dict[str, Any]:
    return next(t["input_schema"] for t in agent_catalog() if t["name"] == tool)


def prop(tool: str, path: tuple[str, ...]) -> dict[str, Any]:
    node = schema_of(tool)
    for name in path:
        node = node["properties"][name]
    return node


# == the catalog ==========================================================================
def test_exactly_28_agent_tools_and_10_helpers() -> None:
    assert [t["name"] for t in agent_catalog()] == [t.name for t in AGENT_TOOLS]
    assert sorted(t.name for t in AGENT_TOOLS) == sorted(AGENT_NAMES)
    assert len(AGENT_TOOLS) == 28
    assert sorted(t.name for t in TOOLS if not t.agent) == sorted(HELPER_NAMES)
    assert len(TOOLS) == 38
    assert len(BY_TOOL) == 38


@pytest.mark.parametrize("tool", AGENT_NAMES)
def test_schema_shape(tool: str) -> None:
    entry = next(t for t in agent_catalog() if t["name"] == tool)
    assert set(entry) == {"name", "description", "input_schema"}
    assert isinstance(entry["description"], str) and entry["description"].strip()
    schema = entry["input_schema"]
    assert schema["type"] == "object"
    assert isinstance(schema["properties"], dict)
    assert isinstance(schema["required"], list)
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) <= set(schema["properties"])
    for name, sub in schema["properties"].items():
        assert "type" in sub, name
        assert sub.get("description"), name
    json.dumps(entry)


@pytest.mark.parametrize("tool", list(SIGNATURES))
def test_schema_matches_the_spec_signature(tool: str) -> None:
    required, optional = SIGNATURES[tool]
    schema = schema_of(tool)
    assert schema["required"] == required
    assert list(schema["properties"]) == required + optional


@pytest.mark.parametrize(
    "tool", [t for t in AGENT_NAMES if t.endswith("_search")] + ["summarize_opportunities"]
)
def test_search_schemas_have_no_required_arguments(tool: str) -> None:
    schema = schema_of(tool)
    assert schema["required"] == []
    assert "criteria" not in schema["properties"]
    assert [sf.name for sf in BY_TOOL[tool].search] == list(schema["properties"])


@pytest.mark.parametrize(
    ("enum", "tool", "path"),
    [pytest.param(e, t, p, id=f"{e.__name__}-{t}") for e, t, p in ENUM_PLACES],
)
def test_enum_values_in_full(enum: Any, tool: str, path: tuple[str, ...]) -> None:
    node = prop(tool, path)
    assert node["type"] == "string"
    assert node["enum"] == values(enum)


def test_every_enum_value_appears_in_the_catalog() -> None:
    text = json.dumps(agent_catalog())
    for enum in (
        ClientStatus,
        OpportunityStage,
        QuoteStatus,
        ContractStatus,
        CompanyType,
        DocumentEntityType,
        NoteEntityType,
    ):
        for value in values(enum):
            assert f'"{value}"' in text


@pytest.mark.parametrize(
    "tool", ["modify_client", "modify_contact", "modify_opportunity", "modify_quote"]
)
def test_modify_schemas_list_only_modifiable_fields(tool: str) -> None:
    entity = BY_TOOL[tool].entity
    assert entity is not None
    updates = prop(tool, ("updates",))
    assert updates["type"] == "object"
    assert updates["additionalProperties"] is False
    assert list(updates["properties"]) == [f.name for f in entity.fields if f.modifiable]
    assert entity.key not in updates["properties"]


def test_numeric_and_format_schemas() -> None:
    amount = prop("create_new_opportunity", ("amount",))
    assert (amount["type"], amount["exclusiveMinimum"], amount["maximum"]) == (
        "number",
        0,
        10_000_000,
    )
    probability = prop("create_new_opportunity", ("probability",))
    assert (probability["type"], probability["minimum"], probability["maximum"]) == (
        "integer",
        1,
        99,
    )
    assert prop("create_new_opportunity", ("close_date",))["format"] == "date"
    assert prop("create_new_client", ("email",))["format"] == "email"
    assert prop("create_contract", ("document_url",))["format"] == "uri"
    assert prop("compare_quotes", ("quote_ids",))["type"] == "array"
    assert "pdf" in prop("upload_document", ("file_name",))["pattern"]


# == crmbench tools --json =================================================================
def test_cli_tools_json_subprocess() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_crmbench.cli", "tools", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    tools = json.loads(done.stdout)
    assert [t["name"] for t in tools] == [t.name for t in AGENT_TOOLS]
    assert tools == agent_catalog()


def test_cli_tools_json_main(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", "--json"]) == 0
    tools = json.loads(capsys.readouterr().out)
    assert len(tools) == 28
    assert sorted(t["name"] for t in tools) == sorted(AGENT_NAMES)
    assert main(["tools", "--json", "--all"]) == 0
    every = json.loads(capsys.readouterr().out)
    assert sorted(t["name"] for t in every) == sorted(AGENT_NAMES + HELPER_NAMES)


def test_cli_tools_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools"]) == 0
    out = capsys.readouterr().out
    assert "28 tools offered to agents" in out
    for name in AGENT_NAMES:
        assert name in out
    for name in HELPER_NAMES:
        assert name not in out


# == what agents may call ==================================================================
NOT_AGENT_TOOLS = [
    *HELPER_NAMES,
    *["_get", "__init__", "_impl", "call", "_invoke", "store", "nope", "Client_Search"],
    *[" client_search", ""],
]


@pytest.mark.parametrize("name", NOT_AGENT_TOOLS)
def test_agents_cannot_call_helpers_or_private_names(crm: CRM, store: Store, name: str) -> None:
    before = repr(store.dump())
    with pytest.raises(CrmError) as info:
        crm.call(name, {}, agent=True)
    assert str(info.value) == f"Unknown tool '{name}'."
    assert repr(store.dump()) == before


@pytest.mark.parametrize("name", ["_get", "__init__", "__class__", "nope", "delete_client"])
def test_unknown_names_are_unknown_without_agent_flag_too(crm: CRM, name: str) -> None:
    with pytest.raises(CrmError) as info:
        crm.call(name, {})
    assert str(info.value) == f"Unknown tool '{name}'."


@pytest.mark.parametrize("name", [None, 5, ("client_search",)], ids=["none", "int", "tuple"])
def test_non_string_tool_names(crm: CRM, name: Any) -> None:
    with pytest.raises(CrmError) as info:
        crm.call(name, {}, agent=True)
    assert str(info.value) == f"Unknown tool '{name!r}'."


@pytest.mark.parametrize(
    "args", [["Acme"], "name=Acme", 5, ("name", "Acme")], ids=["list", "string", "int", "tuple"]
)
@pytest.mark.parametrize("tool", ["client_search", "create_new_client", "quote_prefixes"])
def test_non_object_arguments(crm: CRM, store: Store, tool: str, args: Any) -> None:
    before = repr(store.dump())
    with pytest.raises(CrmError) as info:
        crm.call(tool, args, agent=True)
    assert str(info.value) == f"{tool} arguments must be provided as an object."
    assert repr(store.dump()) == before


def test_agents_can_call_every_task_tool(crm: CRM) -> None:
    for name in ("client_search", "quote_prefixes", "summarize_opportunities", "company_search"):
        crm.call(name, {}, agent=True)
    assert crm.call("client_search", None, agent=True) == crm.call("client_search", {})


# == the seed world obeys the CRM's rules ====================================================
@pytest.fixture
def dump(store: Store) -> dict[str, list[dict[str, Any]]]:
    return store.dump()


def test_seed_foreign_keys_resolve(dump: dict[str, list[dict[str, Any]]]) -> None:
    ids = {t: {r[BY_TABLE[t].key] for r in dump[t]} for t in LOAD_ORDER}
    for t in LOAD_ORDER:
        assert len(ids[t]) == len(dump[t]), f"duplicate ids in {t}"
        for key in ids[t]:
            assert v.canonical_id(key) == key
    assert all(r["client_id"] in ids["clients"] for r in dump["contacts"])
    assert all(r["client_id"] in ids["clients"] for r in dump["opportunities"])
    assert all(r["opportunity_id"] in ids["opportunities"] for r in dump["quotes"])
    opps = {r["opportunity_id"]: r for r in dump["opportunities"]}
    for r in dump["contracts"]:
        assert r["client_id"] in ids["clients"]
        if r["opportunity_id"] is not None:
            assert opps[r["opportunity_id"]]["client_id"] == r["client_id"]
    for r in dump["companies"]:
        assert set(r["contacts"]) <= ids["contacts"]
    targets = {
        "Opportunity": "opportunities",
        "Contract": "contracts",
        "Quote": "quotes",
        "Client": "clients",
        "Contact": "contacts",
    }
    for table in ("documents", "notes"):
        for r in dump[table]:
            assert r["entity_id"] in ids[targets[r["entity_type"]]], r


def test_seed_values_obey_the_rules(dump: dict[str, list[dict[str, Any]]]) -> None:
    enums = {
        ("clients", "status"): ClientStatus,
        ("opportunities", "stage"): OpportunityStage,
        ("quotes", "status"): QuoteStatus,
        ("contracts", "status"): ContractStatus,
        ("companies", "type"): CompanyType,
        ("documents", "entity_type"): DocumentEntityType,
        ("notes", "entity_type"): NoteEntityType,
    }
    for (table, field), enum in enums.items():
        for r in dump[table]:
            assert r[field] in values(enum), (table, r)
    for table in ("opportunities", "quotes"):
        for r in dump[table]:
            assert v.amount(r["amount"], "amount") == r["amount"]
    for r in dump["contracts"]:
        assert r["value"] is None or 0 <= r["value"] <= 10_000_000
        if r["start_date"] and r["end_date"]:
            assert r["end_date"] >= r["start_date"]
        assert v.url(r["document_url"], "url") == r["document_url"]
    for r in dump["opportunities"]:
        assert v.probability(r["probability"]) == r["probability"]
        for f in ("name",):
            assert v.text(r[f], f, required=True) == r[f]
    for r in dump["clients"]:
        assert v.email(r["email"], "e", "Client", required=True) == r["email"]
        assert v.text(r["name"], "n", required=True) == r["name"]
    for r in dump["contacts"]:
        assert v.email(r["email"], "e", "Contact", required=False) == r["email"]
        assert v.text(r["first_name"], "f", required=True) == r["first_name"]
        assert v.text(r["last_name"], "l", required=True) == r["last_name"]
    for r in dump["documents"]:
        assert v.file_name(r["file_name"]) == r["file_name"]
        assert v.url(r["file_url"], "url") == r["file_url"]
    for r in dump["notes"]:
        assert v.text(r["content"], "c", required=True) == r["content"]


def test_seed_emails_unique_case_insensitively(dump: dict[str, list[dict[str, Any]]]) -> None:
    folded = [v.fold(r["email"].strip()) for r in dump["clients"]]
    assert len(set(folded)) == len(folded)


def test_seed_dates_consistent_with_reference_date(
    dump: dict[str, list[dict[str, Any]]], world: Any
) -> None:
    today: date = world.reference_date
    assert today == date(2025, 10, 1)
    for r in dump["opportunities"]:
        if r["stage"] not in CLOSED_STAGES:
            assert r["close_date"] is not None and r["close_date"] >= today, r["name"]
        elif r["close_date"] is not None:
            assert r["close_date"] <= today, r["name"]
    for table, field in (
        ("clients", "created_date"),
        ("opportunities", "created_at"),
        ("quotes", "created_date"),
        ("documents", "uploaded_at"),
        ("notes", "created_at"),
    ):
        for r in dump[table]:
            assert r[field].date() <= today, (table, r)
            assert r[field].utcoffset() is not None


def test_seed_sizes(dump: dict[str, list[dict[str, Any]]]) -> None:
    assert len(dump["clients"]) >= 25
    per_client = Counter(r["client_id"] for r in dump["contacts"])
    assert set(per_client) == {r["client_id"] for r in dump["clients"]}
    assert all(1 <= n <= 3 for n in per_client.values())
    assert {r["status"] for r in dump["clients"]} == set(values(ClientStatus))
    assert len({r["industry"] for r in dump["clients"]}) >= 3
    assert len(dump["opportunities"]) >= 40
    assert {r["stage"] for r in dump["opportunities"]} == set(values(OpportunityStage))
    assert len({r["owner"] for r in dump["opportunities"] if r["owner"]}) >= 5
    assert len(dump["quotes"]) >= 40
    assert {r["status"] for r in dump["quotes"]} == set(values(QuoteStatus))
    assert len(dump["contracts"]) >= 10
    companies = Counter(r["type"] for r in dump["companies"])
    assert len(dump["companies"]) >= 6
    assert set(companies) == set(values(CompanyType))
    assert {r["entity_type"] for r in dump["documents"]} == set(values(DocumentEntityType))
    assert {r["entity_type"] for r in dump["notes"]} == set(values(NoteEntityType))


def test_seed_near_duplicates(dump: dict[str, list[dict[str, Any]]]) -> None:
    names = [r["name"] for r in dump["clients"]]
    assert "Acme Corporation" in names and "Acme Analytics" in names
    chens = [
        (r["first_name"], r["last_name"]) for r in dump["contacts"] if r["last_name"] == "Chen"
    ]
    assert chens == [("Linda", "Chen"), ("David", "Chen")]
    renewals = [
        r["name"] for r in dump["opportunities"] if r["name"].endswith("– Data Platform Renewal")
    ]
    assert len(renewals) == 2
    emails = {r["email"] for r in dump["clients"]}
    assert {"ops@bluefin.com", "ops@bluefin.co"} <= emails
