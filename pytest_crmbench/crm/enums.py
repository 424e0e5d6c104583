"""The CRM's seven enums, spelled exactly as the spec fixes them (declaration order)."""

from __future__ import annotations

from enum import StrEnum


class ClientStatus(StrEnum):
    ACTIVE = "Active"
    PROSPECT = "Prospect"
    INACTIVE = "Inactive"


class OpportunityStage(StrEnum):
    PROSPECTING = "Prospecting"
    QUALIFICATION = "Qualification"
    PROPOSAL = "Proposal"
    NEGOTIATION = "Negotiation"
    CLOSED_WON = "Closed-Won"
    CLOSED_LOST = "Closed-Lost"


class QuoteStatus(StrEnum):
    DRAFT = "Draft"
    SENT = "Sent"
    APPROVED = "Approved"
    REJECTED = "Rejected"
    CANCELED = "Canceled"


class ContractStatus(StrEnum):
    ACTIVE = "Active"
    PENDING = "Pending"
    EXPIRED = "Expired"


class CompanyType(StrEnum):
    PARTNER = "Partner"
    VENDOR = "Vendor"
    COMPETITOR = "Competitor"


class DocumentEntityType(StrEnum):
    OPPORTUNITY = "Opportunity"
    CONTRACT = "Contract"
    QUOTE = "Quote"
    CLIENT = "Client"


class NoteEntityType(StrEnum):
    OPPORTUNITY = "Opportunity"
    CLIENT = "Client"
    CONTACT = "Contact"
    QUOTE = "Quote"
    CONTRACT = "Contract"


CLOSED_STAGES = frozenset({OpportunityStage.CLOSED_WON.value, OpportunityStage.CLOSED_LOST.value})

ALL_ENUMS: tuple[type[StrEnum], ...] = (
    ClientStatus,
    OpportunityStage,
    QuoteStatus,
    ContractStatus,
    CompanyType,
    DocumentEntityType,
    NoteEntityType,
)


def values(enum: type[StrEnum]) -> list[str]:
    """Values in declaration order."""
    return [member.value for member in enum]
