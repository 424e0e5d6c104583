"""Entity metadata: the single definition of every entity's fields.

Validation, the tool catalog's JSON Schemas, modify rules, the PostgreSQL row mapping
and the seed loader all read these tables, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any, Literal

from pytest_crmbench.crm.enums import (
    ClientStatus,
    CompanyType,
    ContractStatus,
    DocumentEntityType,
    NoteEntityType,
    OpportunityStage,
    QuoteStatus,
)

Kind = Literal[
    "id",  # the record's own key, made by the CRM
    "ref",  # a foreign key to another entity's id
    "text",  # free text
    "email",
    "enum",
    "amount",  # > 0 and ≤ 10,000,000
    "value",  # ≥ 0 and ≤ 10,000,000
    "probability",  # whole number 1..99
    "close_date",  # strict date, today or later
    "date",  # strict date
    "url",  # absolute http(s) URL
    "file_name",
    "timestamp",  # set by the CRM
    "id_list",
    "entity_type",  # polymorphic target type (documents, notes)
    "entity_ref",  # polymorphic target id
]

Record = dict[str, Any]


@dataclass(frozen=True)
class Field:
    """One field of an entity; ``label`` is the ``{f}`` of the spec's messages."""

    name: str
    kind: Kind
    label: str
    required: bool = False
    modifiable: bool = True
    enum: type[StrEnum] | None = None
    ref: str | None = None  # entity name a "ref" points to
    description: str = ""

    @property
    def is_key_or_stamp(self) -> bool:
        return self.kind in ("id", "ref", "timestamp", "entity_ref")


@dataclass(frozen=True)
class Entity:
    """An entity type: its name (as in messages), table name and fields."""

    name: str
    table: str
    key: str
    fields: tuple[Field, ...]

    def field(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    @cached_property
    def field_names(self) -> tuple[str, ...]:
        # Cached: dataset validation asks for it once per seed record key.
        return tuple(f.name for f in self.fields)


def _id(entity: str, key: str) -> Field:
    return Field(key, "id", f"{entity} id", modifiable=False, description=f"The {entity}'s id.")


CLIENT = Entity(
    "Client",
    "clients",
    "client_id",
    (
        _id("Client", "client_id"),
        Field("name", "text", "Client name", required=True, description="Company name."),
        Field("email", "email", "Client email", required=True, description="Unique email."),
        Field("status", "enum", "Client status", required=True, enum=ClientStatus),
        Field("industry", "text", "Client industry"),
        Field("phone", "text", "Client phone"),
        Field("address", "text", "Client address"),
        Field("owner", "text", "Client owner", description="Account owner (sales rep)."),
        Field("created_date", "timestamp", "Client created date", modifiable=False),
    ),
)

CONTACT = Entity(
    "Contact",
    "contacts",
    "contact_id",
    (
        _id("Contact", "contact_id"),
        Field("first_name", "text", "Contact first name", required=True),
        Field("last_name", "text", "Contact last name", required=True),
        Field(
            "client_id",
            "ref",
            "Contact client id",
            required=True,
            modifiable=False,
            ref="Client",
            description="The client this contact works for.",
        ),
        Field("title", "text", "Contact title", description="Job title."),
        Field("email", "email", "Contact email"),
        Field("phone", "text", "Contact phone"),
        Field("notes", "text", "Contact notes"),
    ),
)

OPPORTUNITY = Entity(
    "Opportunity",
    "opportunities",
    "opportunity_id",
    (
        _id("Opportunity", "opportunity_id"),
        Field("name", "text", "Opportunity name", required=True),
        Field(
            "client_id",
            "ref",
            "Opportunity client id",
            required=True,
            modifiable=False,
            ref="Client",
            description="The client the deal is with.",
        ),
        Field("stage", "enum", "Opportunity stage", required=True, enum=OpportunityStage),
        Field(
            "amount",
            "amount",
            "Opportunity amount",
            required=True,
            description="Deal amount in USD, > 0 and ≤ 10,000,000.",
        ),
        Field(
            "close_date",
            "close_date",
            "Close date",
            description="Expected close date, YYYY-MM-DD, today or later.",
        ),
        Field(
            "probability",
            "probability",
            "Probability",
            description="Win probability, whole-number percent 1..99.",
        ),
        Field("owner", "text", "Opportunity owner", description="Sales rep who owns the deal."),
        Field("notes", "text", "Opportunity notes"),
        Field("created_at", "timestamp", "Opportunity created at", modifiable=False),
    ),
)

QUOTE = Entity(
    "Quote",
    "quotes",
    "quote_id",
    (
        _id("Quote", "quote_id"),
        Field(
            "opportunity_id",
            "ref",
            "Quote opportunity id",
            required=True,
            modifiable=False,
            ref="Opportunity",
            description="The opportunity this quote prices.",
        ),
        Field(
            "amount",
            "amount",
            "Quote amount",
            required=True,
            description="Quoted amount in USD, > 0 and ≤ 10,000,000.",
        ),
        Field("status", "enum", "Quote status", required=True, enum=QuoteStatus),
        Field("version", "text", "Quote version", description='e.g. "v2".'),
        Field("valid_until", "date", "Quote valid until", description="YYYY-MM-DD."),
        Field(
            "quote_prefix", "text", "Quote prefix", description='Numbering prefix, e.g. "Q2025".'
        ),
        Field("created_date", "timestamp", "Quote created date", modifiable=False),
    ),
)

CONTRACT = Entity(
    "Contract",
    "contracts",
    "contract_id",
    (
        _id("Contract", "contract_id"),
        Field(
            "client_id", "ref", "Contract client id", required=True, modifiable=False, ref="Client"
        ),
        Field(
            "opportunity_id",
            "ref",
            "Contract opportunity id",
            modifiable=False,
            ref="Opportunity",
            description="Optional; must belong to the same client.",
        ),
        Field("start_date", "date", "Contract start date", description="YYYY-MM-DD."),
        Field("end_date", "date", "Contract end date", description="YYYY-MM-DD, not before start."),
        Field("value", "value", "Contract value", description="Total value in USD, ≥ 0."),
        Field(
            "status",
            "enum",
            "Contract status",
            enum=ContractStatus,
            description="Defaults to Pending.",
        ),
        Field("document_url", "url", "Contract document URL"),
    ),
)

COMPANY = Entity(
    "Company",
    "companies",
    "company_id",
    (
        _id("Company", "company_id"),
        Field("name", "text", "Company name", required=True),
        Field("type", "enum", "Company type", required=True, enum=CompanyType),
        Field("industry", "text", "Company industry"),
        Field("address", "text", "Company address"),
        Field("contacts", "id_list", "Company contacts", modifiable=False),
    ),
)

DOCUMENT = Entity(
    "Document",
    "documents",
    "document_id",
    (
        _id("Document", "document_id"),
        Field(
            "entity_type",
            "entity_type",
            "Document entity type",
            required=True,
            modifiable=False,
            enum=DocumentEntityType,
            description="Type of the record the document is attached to.",
        ),
        Field(
            "entity_id",
            "entity_ref",
            "Document entity id",
            required=True,
            modifiable=False,
            description="Id of the record the document is attached to.",
        ),
        Field(
            "file_name",
            "file_name",
            "Document file name",
            required=True,
            description="Letters, digits, dots, underscores, hyphens; allowed extension.",
        ),
        Field("uploaded_by", "text", "Document uploaded by"),
        Field("uploaded_at", "timestamp", "Document uploaded at", modifiable=False),
        Field("file_url", "url", "Document file URL"),
    ),
)

NOTE = Entity(
    "Note",
    "notes",
    "note_id",
    (
        _id("Note", "note_id"),
        Field(
            "entity_type",
            "entity_type",
            "Note entity type",
            required=True,
            modifiable=False,
            enum=NoteEntityType,
            description="Type of the record the note is about.",
        ),
        Field(
            "entity_id",
            "entity_ref",
            "Note entity id",
            required=True,
            modifiable=False,
            description="Id of the record the note is about.",
        ),
        Field("content", "text", "Note content", required=True),
        Field("created_by", "text", "Note created by"),
        Field("created_at", "timestamp", "Note created at", modifiable=False),
    ),
)

ENTITIES: tuple[Entity, ...] = (
    CLIENT,
    CONTACT,
    OPPORTUNITY,
    QUOTE,
    CONTRACT,
    COMPANY,
    DOCUMENT,
    NOTE,
)
BY_NAME: dict[str, Entity] = {e.name: e for e in ENTITIES}
BY_TABLE: dict[str, Entity] = {e.table: e for e in ENTITIES}

# Order in which tables can be filled without breaking foreign keys (and emptied in reverse).
LOAD_ORDER: tuple[str, ...] = (
    "clients",
    "contacts",
    "opportunities",
    "quotes",
    "contracts",
    "companies",
    "documents",
    "notes",
)
