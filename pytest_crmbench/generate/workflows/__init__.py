"""Every task and refusal by name, with the workflows it serves: the tables the generator
draws from, in one place so the workflow modules need not know the plan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pytest_crmbench.generate.builder import Builder
from pytest_crmbench.generate.workflows.clients import (
    r_duplicate_email,
    t_client_list,
    t_client_lookup,
    t_create_client,
    t_modify_client,
)
from pytest_crmbench.generate.workflows.common import (
    CLIENT,
    COMPANY,
    CONTACT,
    CONTRACT,
    DOCUMENT,
    NOTES,
    OPP,
    QUOTE,
)
from pytest_crmbench.generate.workflows.companies import t_company_search
from pytest_crmbench.generate.workflows.contacts import (
    r_invalid_email,
    t_contact_list,
    t_contact_lookup,
    t_create_contact,
    t_modify_contact,
)
from pytest_crmbench.generate.workflows.contracts import (
    r_contract_dates,
    r_wrong_client,
    t_contract_search,
    t_create_contract,
)
from pytest_crmbench.generate.workflows.deleted import r_deleted_record
from pytest_crmbench.generate.workflows.documents import (
    r_bad_file_chars,
    r_bad_file_type,
    r_no_extension,
    t_client_document,
    t_contract_document,
    t_upload_document,
)
from pytest_crmbench.generate.workflows.notes import (
    t_add_note,
    t_client_note,
    t_contact_note,
    t_contract_note,
)
from pytest_crmbench.generate.workflows.opportunities import (
    r_amount_over,
    r_closed_edit,
    r_past_close,
    r_probability,
    t_account_deals,
    t_account_pipeline,
    t_clone_opportunity,
    t_create_opportunity,
    t_delete_opportunity,
    t_find_opportunity,
    t_list_opportunities,
    t_modify_opportunity,
    t_opp_documents,
    t_opp_notes,
    t_opportunity_details,
    t_summarize,
    t_view_opportunity,
)
from pytest_crmbench.generate.workflows.quotes import (
    t_cancel_quote,
    t_compare,
    t_compare_details,
    t_create_quote,
    t_delete_quote,
    t_modify_quote,
    t_quote_details,
    t_quote_documents,
    t_quote_notes,
    t_quote_prefixes,
    t_quote_search,
)


@dataclass(frozen=True)
class Task:
    name: str
    tool: str
    run: Callable[[Builder, str], None]
    topics: tuple[str, ...]  # natural topic first; the others when that is the workflow

    def topic_for(self, workflow: str) -> str:
        return workflow if workflow in self.topics else self.topics[0]


@dataclass(frozen=True)
class Refusal:
    name: str
    run: Callable[[Builder, int, str], None]
    topics: tuple[str, ...]


VIEW = "view_opportunity_details"
TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("create_new_opportunity", "create_new_opportunity", t_create_opportunity, (OPP,)),
        Task("modify_opportunity", "modify_opportunity", t_modify_opportunity, (OPP,)),
        Task("find_opportunity", "opportunity_search", t_find_opportunity, (OPP,)),
        Task("list_opportunities", "opportunity_search", t_list_opportunities, (OPP,)),
        Task("view_opportunity_details", VIEW, t_view_opportunity, (OPP, QUOTE)),
        Task("opportunity_details", "opportunity_details", t_opportunity_details, (OPP,)),
        Task("clone_opportunity", "clone_opportunity", t_clone_opportunity, (OPP,)),
        Task("summarize_opportunities", "summarize_opportunities", t_summarize, (OPP,)),
        Task("delete_opportunity", "delete_opportunity", t_delete_opportunity, (OPP,)),
        Task("create_quote", "create_quote", t_create_quote, (QUOTE,)),
        Task("modify_quote", "modify_quote", t_modify_quote, (QUOTE,)),
        Task("cancel_quote", "cancel_quote", t_cancel_quote, (QUOTE,)),
        Task("delete_quote", "delete_quote", t_delete_quote, (QUOTE,)),
        Task("quote_search", "quote_search", t_quote_search, (QUOTE,)),
        Task("quote_details", "quote_details", t_quote_details, (QUOTE,)),
        Task("compare_quotes", "compare_quotes", t_compare, (QUOTE,)),
        Task("compare_quote_details", "compare_quote_details", t_compare_details, (QUOTE,)),
        Task("quote_prefixes", "quote_prefixes", t_quote_prefixes, (QUOTE,)),
        Task("create_new_client", "create_new_client", t_create_client, (CLIENT,)),
        Task("modify_client", "modify_client", t_modify_client, (CLIENT, COMPANY)),
        Task("client_lookup", "client_search", t_client_lookup, (CLIENT, COMPANY)),
        Task("client_list", "client_search", t_client_list, (CLIENT, COMPANY)),
        Task("create_new_contact", "create_new_contact", t_create_contact, (CONTACT,)),
        Task("modify_contact", "modify_contact", t_modify_contact, (CONTACT,)),
        Task("contact_lookup", "contact_search", t_contact_lookup, (CONTACT,)),
        Task("contact_list", "contact_search", t_contact_list, (CONTACT, COMPANY)),
        Task("create_contract", "create_contract", t_create_contract, (CONTRACT,)),
        Task("contract_search", "contract_search", t_contract_search, (CONTRACT, COMPANY)),
        Task("company_search", "company_search", t_company_search, (COMPANY,)),
        Task("account_deals", "opportunity_search", t_account_deals, (COMPANY, CLIENT)),
        Task("account_pipeline", "summarize_opportunities", t_account_pipeline, (COMPANY, CLIENT)),
        Task("upload_document", "upload_document", t_upload_document, (DOCUMENT,)),
        Task("opp_documents", VIEW, t_opp_documents, (DOCUMENT,)),
        Task("quote_documents", "quote_details", t_quote_documents, (DOCUMENT,)),
        Task("add_note", "add_note", t_add_note, (NOTES,)),
        Task("contract_document", "upload_document", t_contract_document, (CONTRACT, DOCUMENT)),
        Task("client_document", "upload_document", t_client_document, (CLIENT, DOCUMENT)),
        Task("contract_note", "add_note", t_contract_note, (CONTRACT, NOTES)),
        Task("contact_note", "add_note", t_contact_note, (CONTACT, NOTES)),
        Task("client_note", "add_note", t_client_note, (CLIENT, COMPANY, NOTES)),
        Task("opp_notes", VIEW, t_opp_notes, (NOTES,)),
        Task("quote_notes", "quote_details", t_quote_notes, (NOTES,)),
    )
}

REFUSALS: tuple[Refusal, ...] = (
    Refusal("past_close_date", r_past_close, (OPP,)),
    Refusal("bad_probability", r_probability, (OPP,)),
    Refusal("closed_deal_edit", r_closed_edit, (OPP, COMPANY)),
    Refusal("amount_over_limit", r_amount_over, (OPP, QUOTE)),
    Refusal("unsupported_file_type", r_bad_file_type, (DOCUMENT,)),
    Refusal("illegal_file_name", r_bad_file_chars, (DOCUMENT,)),
    Refusal("file_without_extension", r_no_extension, (DOCUMENT,)),
    Refusal("duplicate_client_email", r_duplicate_email, (CLIENT, COMPANY)),
    Refusal("invalid_email", r_invalid_email, (CONTACT,)),
    Refusal("contract_dates_reversed", r_contract_dates, (CONTRACT,)),
    Refusal("contract_other_client_deal", r_wrong_client, (CONTRACT,)),
    Refusal("deleted_record", r_deleted_record, (QUOTE, NOTES, OPP)),
)

__all__ = [
    "CLIENT",
    "COMPANY",
    "CONTACT",
    "CONTRACT",
    "DOCUMENT",
    "NOTES",
    "OPP",
    "QUOTE",
    "REFUSALS",
    "TASKS",
    "Refusal",
    "Task",
]
