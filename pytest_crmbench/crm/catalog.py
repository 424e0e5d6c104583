"""The tool catalog: one definition per API method, from which both the argument
binding (required / unexpected arguments) and the agents' JSON Schemas are derived.

Create tools take their parameters straight from the entity metadata; search tools from
the search whitelists below. ``crmbench tools`` prints this catalog.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from pytest_crmbench.crm.entities import (
    CLIENT,
    COMPANY,
    CONTACT,
    CONTRACT,
    DOCUMENT,
    NOTE,
    OPPORTUNITY,
    QUOTE,
    Entity,
    Field,
)
from pytest_crmbench.crm.enums import values
from pytest_crmbench.crm.validation import ALLOWED_EXTENSIONS

Group = Literal["create", "modify", "lifecycle", "search", "read", "helper"]
Extra = Literal["updates", "criteria"] | None
SearchMode = Literal["text", "enum", "id", "number", "min", "max", "date", "before", "after", "int"]


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict[str, Any]
    required: bool = False


@dataclass(frozen=True)
class SearchField:
    """A search criterion: which record field it reads and how it matches."""

    name: str
    field: str
    mode: SearchMode


@dataclass(frozen=True)
class ToolSpec:
    name: str
    group: Group
    description: str
    params: tuple[Param, ...]
    entity: Entity | None = None
    extra: Extra = None  # where unknown keyword arguments go, if anywhere
    agent: bool = True  # offered to agents (the 28 task tools) or a helper
    search: tuple[SearchField, ...] = field(default=())

    @cached_property
    def param_names(self) -> tuple[str, ...]:
        # Cached: dataset validation asks for it once per argument of every call.
        return tuple(p.name for p in self.params)

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of the arguments object (what agents see)."""
        return {
            "type": "object",
            "properties": {p.name: p.schema for p in self.params if p.name != "criteria"},
            "required": [p.name for p in self.params if p.required],
            "additionalProperties": False,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.json_schema(),
        }


_UUID = {"type": "string", "format": "uuid"}


def field_schema(f: Field) -> dict[str, Any]:
    """JSON Schema of one entity field, every enum value spelled out."""
    desc = f.description or f.label + "."
    if f.enum is not None:
        return {"type": "string", "enum": values(f.enum), "description": desc}
    kind = f.kind
    if kind in ("id", "ref", "entity_ref"):
        return {**_UUID, "description": desc}
    if kind == "email":
        return {"type": "string", "format": "email", "description": desc}
    if kind in ("amount", "value"):
        low = {"exclusiveMinimum": 0} if kind == "amount" else {"minimum": 0}
        return {"type": "number", **low, "maximum": 10_000_000, "description": desc}
    if kind == "probability":
        return {"type": "integer", "minimum": 1, "maximum": 99, "description": desc}
    if kind in ("date", "close_date"):
        return {"type": "string", "format": "date", "description": desc}
    if kind == "url":
        return {"type": "string", "format": "uri", "description": desc}
    if kind == "file_name":
        return {
            "type": "string",
            "pattern": r"^[A-Za-z0-9._-]+\.(" + "|".join(ALLOWED_EXTENSIONS) + ")$",
            "description": desc + " Allowed extensions: " + ", ".join(ALLOWED_EXTENSIONS) + ".",
        }
    if kind == "timestamp":
        return {"type": "string", "format": "date-time", "description": desc}
    if kind == "id_list":
        return {"type": "array", "items": _UUID, "description": desc}
    return {"type": "string", "description": desc}


def _create_params(entity: Entity, first: tuple[str, ...] = ()) -> tuple[Param, ...]:
    """Create parameters in entity field order, ``first`` moved to the front in that order
    (the spec's method signature where it differs from the entity's field order)."""
    params = [
        Param(f.name, field_schema(f), f.required)
        for f in entity.fields
        if f.kind not in ("id", "timestamp", "id_list")
    ]
    params.sort(key=lambda p: first.index(p.name) if p.name in first else len(first))
    return tuple(params)


def _key_param(entity: Entity) -> Param:
    f = entity.field(entity.key)
    assert f is not None
    return Param(entity.key, field_schema(f), True)


def _updates_param(entity: Entity) -> Param:
    props = {f.name: field_schema(f) for f in entity.fields if f.modifiable}
    return Param(
        "updates",
        {
            "type": "object",
            "properties": props,
            "additionalProperties": False,
            "description": f"Fields of the {entity.name.lower()} to change and their new values.",
        },
        True,
    )


def _search_schema(entity: Entity, sf: SearchField) -> dict[str, Any]:
    f = entity.field(sf.field)
    assert f is not None
    base = field_schema(f)
    if sf.mode == "text":
        return {"type": "string", "description": f"Case-insensitive substring of {sf.field}."}
    if sf.mode == "enum":
        return {**base, "description": f"{f.label} (case-insensitive)."}
    if sf.mode in ("min", "max"):
        bound = "Minimum" if sf.mode == "min" else "Maximum"
        return {"type": "number", "description": f"{bound} {sf.field} (inclusive)."}
    if sf.mode in ("before", "after"):
        side = "On or before" if sf.mode == "before" else "On or after"
        return {"type": "string", "format": "date", "description": f"{side} this {sf.field}."}
    return base


def _search_fields(entity: Entity, spec: str) -> tuple[SearchField, ...]:
    out = []
    for item in spec.split():
        name, _, rest = item.partition("=")
        fname, _, mode = rest.partition(":")
        out.append(SearchField(name, fname or name, mode))  # type: ignore[arg-type]
    return tuple(out)


SEARCHES: dict[str, tuple[Entity, str]] = {
    "client_search": (
        CLIENT,
        "client_id=:id name=:text email=:text status=:enum industry=:text phone=:text "
        "address=:text owner=:text",
    ),
    "contact_search": (
        CONTACT,
        "contact_id=:id first_name=:text last_name=:text client_id=:id title=:text email=:text "
        "phone=:text notes=:text",
    ),
    "opportunity_search": (
        OPPORTUNITY,
        "opportunity_id=:id name=:text client_id=:id stage=:enum amount=:number "
        "min_amount=amount:min max_amount=amount:max close_date=:date "
        "close_date_before=close_date:before close_date_after=close_date:after "
        "probability=:int owner=:text notes=:text",
    ),
    "quote_search": (
        QUOTE,
        "quote_id=:id opportunity_id=:id amount=:number min_amount=amount:min "
        "max_amount=amount:max status=:enum version=:text quote_prefix=:text valid_until=:date",
    ),
    "contract_search": (
        CONTRACT,
        "contract_id=:id client_id=:id opportunity_id=:id status=:enum start_date=:date "
        "end_date=:date value=:number document_url=:text",
    ),
    "company_search": (
        COMPANY,
        "company_id=:id name=:text type=:enum industry=:text address=:text",
    ),
}

_SEARCH_DOC = {
    "client_search": "Find clients. All criteria optional and ANDed; text matches are "
    "case-insensitive substrings; no criteria lists all clients.",
    "contact_search": "Find contacts (e.g. by last name or client_id). Criteria ANDed; text "
    "matches are case-insensitive substrings.",
    "opportunity_search": "Find opportunities by name fragment, client, stage, owner, amount "
    "range (min_amount/max_amount) or close-date window (close_date_after/close_date_before, "
    "inclusive). Criteria ANDed.",
    "quote_search": "Find quotes by opportunity, status, amount range, version or prefix. "
    "Criteria ANDed.",
    "contract_search": "Find contracts by client, opportunity, status or dates. Criteria ANDed.",
    "company_search": "Find companies (partners, vendors, competitors). Criteria ANDed.",
}


def _search_tool(name: str) -> ToolSpec:
    entity, spec = SEARCHES[name]
    fields = _search_fields(entity, spec)
    params = tuple(Param(sf.name, _search_schema(entity, sf)) for sf in fields)
    params += (Param("criteria", {"type": "object"}),)
    return ToolSpec(
        name, "search", _SEARCH_DOC[name], params, entity=entity, extra="criteria", search=fields
    )


def _modify_tool(entity: Entity, doc: str) -> ToolSpec:
    name = f"modify_{entity.name.lower()}"
    return ToolSpec(
        name, "modify", doc, (_key_param(entity), _updates_param(entity)), entity, extra="updates"
    )


def _one_id(name: str, group: Group, entity: Entity, doc: str, *, agent: bool = True) -> ToolSpec:
    return ToolSpec(name, group, doc, (_key_param(entity),), entity, agent=agent)


_QUOTE_IDS = Param(
    "quote_ids",
    {"type": "array", "items": _UUID, "minItems": 1, "description": "Quote ids, in order."},
    True,
)


def _list_tool(entity: Entity) -> ToolSpec:
    return ToolSpec(
        f"list_{entity.table}",
        "helper",
        f"All {entity.table} as a mapping of id to record (setup and verification).",
        (),
        entity,
        agent=False,
    )


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "create_new_client",
        "create",
        "Create a client. The email must be unique.",
        _create_params(CLIENT),
        CLIENT,
    ),
    ToolSpec(
        "create_new_contact",
        "create",
        "Create a contact person at an existing client.",
        _create_params(CONTACT),
        CONTACT,
    ),
    ToolSpec(
        "create_new_opportunity",
        "create",
        "Create a sales opportunity (deal) for an existing client.",
        _create_params(OPPORTUNITY, ("name", "client_id", "amount", "stage")),
        OPPORTUNITY,
    ),
    ToolSpec(
        "create_quote",
        "create",
        "Create a quote for an existing opportunity.",
        _create_params(QUOTE),
        QUOTE,
    ),
    ToolSpec(
        "create_contract",
        "create",
        "Create a contract for a client, optionally tied to one of its opportunities.",
        _create_params(CONTRACT),
        CONTRACT,
    ),
    ToolSpec(
        "upload_document",
        "create",
        "Attach a document to a client, opportunity, quote or contract.",
        _create_params(DOCUMENT),
        DOCUMENT,
    ),
    ToolSpec(
        "add_note",
        "create",
        "Add a note to a client, contact, opportunity, quote or contract.",
        _create_params(NOTE),
        NOTE,
    ),
    _modify_tool(CLIENT, "Change fields of a client."),
    _modify_tool(CONTACT, "Change fields of a contact."),
    _modify_tool(
        OPPORTUNITY,
        "Change fields of an opportunity. Stage, amount, probability and close date "
        "of a Closed-Won/Closed-Lost deal cannot be changed.",
    ),
    _modify_tool(QUOTE, "Change fields of a quote."),
    _one_id(
        "delete_opportunity",
        "lifecycle",
        OPPORTUNITY,
        "Delete an opportunity with its quotes and the documents and notes attached to "
        "them; its contracts are kept and unlinked.",
    ),
    _one_id(
        "delete_quote",
        "lifecycle",
        QUOTE,
        "Delete a quote and the documents and notes attached to it.",
    ),
    _one_id("cancel_quote", "lifecycle", QUOTE, "Set a quote's status to Canceled."),
    _one_id(
        "clone_opportunity",
        "lifecycle",
        OPPORTUNITY,
        "Copy an opportunity into a new one named '<name> (Clone)'; attachments are not copied.",
    ),
    _search_tool("client_search"),
    _search_tool("contact_search"),
    _search_tool("opportunity_search"),
    _search_tool("quote_search"),
    _search_tool("contract_search"),
    _search_tool("company_search"),
    _one_id(
        "view_opportunity_details",
        "read",
        OPPORTUNITY,
        "An opportunity with its client, quotes, contracts, documents and notes.",
    ),
    _one_id("opportunity_details", "read", OPPORTUNITY, "Same as view_opportunity_details."),
    _one_id("quote_details", "read", QUOTE, "A quote with its opportunity, documents and notes."),
    ToolSpec(
        "compare_quotes",
        "read",
        "The given quotes side by side, in the given order.",
        (_QUOTE_IDS,),
        QUOTE,
    ),
    ToolSpec(
        "compare_quote_details",
        "read",
        "Quotes with their amounts, statuses and total amount.",
        (_QUOTE_IDS,),
        QUOTE,
    ),
    ToolSpec(
        "summarize_opportunities",
        "read",
        "Count and total amount of the opportunities matching the criteria (same criteria as "
        "opportunity_search), broken down by stage and owner.",
        _search_tool("opportunity_search").params,
        OPPORTUNITY,
        extra="criteria",
        search=_search_tool("opportunity_search").search,
    ),
    ToolSpec("quote_prefixes", "read", "The distinct quote prefixes in use, sorted.", (), QUOTE),
    # -- helpers (not offered to agents) ---------------------------------------------
    ToolSpec(
        "ensure_client",
        "helper",
        "Get the client with this email, or create it.",
        _create_params(CLIENT),
        CLIENT,
        agent=False,
    ),
    _list_tool(CLIENT),
    _list_tool(CONTACT),
    _list_tool(OPPORTUNITY),
    _list_tool(QUOTE),
    _list_tool(CONTRACT),
    _list_tool(DOCUMENT),
    _list_tool(NOTE),
    _list_tool(COMPANY),
    ToolSpec("summarize_counts", "helper", "Number of records per table.", (), agent=False),
)

BY_TOOL: dict[str, ToolSpec] = {t.name: t for t in TOOLS}
AGENT_TOOLS: tuple[ToolSpec, ...] = tuple(t for t in TOOLS if t.agent)
HELPER_TOOLS: tuple[ToolSpec, ...] = tuple(t for t in TOOLS if not t.agent)


def agent_catalog() -> list[dict[str, Any]]:
    """The 28 task tools as ``{name, description, input_schema}`` objects."""
    return [t.as_dict() for t in AGENT_TOOLS]
