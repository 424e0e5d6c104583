"""The CRM's business logic: one implementation of the 38 API methods over any store.

Every call is bound against its :class:`~pytest_crmbench.crm.catalog.ToolSpec`, checked
in the order the spec fixes, and run inside a savepoint so a failing call changes
nothing. Results are JSON-ready (ISO dates, numeric numbers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from pytest_crmbench.crm import validation as v
from pytest_crmbench.crm.catalog import BY_TOOL, SearchField, ToolSpec
from pytest_crmbench.crm.clock import Clock, IdFactory, RandomIds, SystemClock
from pytest_crmbench.crm.entities import (
    BY_NAME,
    CLIENT,
    CONTRACT,
    DOCUMENT,
    LOAD_ORDER,
    NOTE,
    OPPORTUNITY,
    QUOTE,
    Entity,
    Field,
    Record,
)
from pytest_crmbench.crm.enums import CLOSED_STAGES, OpportunityStage, values
from pytest_crmbench.crm.errors import CrmError, shorten
from pytest_crmbench.crm.store import Cond, Store, atomic

_MISSING: Any = object()
_GUARDED = ("amount", "close_date", "probability", "stage")
_FIXED_LABELS = ("probability", "close_date")  # their messages never say "update"


def to_json(value: Any) -> Any:
    """Store values → JSON values (dates and timestamps as ISO strings)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return [to_json(x) for x in value]
    return value


def out(record: Record) -> Record:
    """A record as the JSON object a tool returns."""
    return {k: to_json(x) for k, x in record.items()}


def _not_found(entity: Entity, raw: Any) -> CrmError:
    return CrmError(f"{entity.name} not found with ID '{shorten(raw)}'.")


class CRM:
    """The CRM over a store. Use :meth:`call` (agents, datasets) or the named methods.

    ``clock`` fixes "today" and timestamps; ``ids`` makes the ids of new records.
    """

    def __init__(
        self, store: Store, *, clock: Clock | None = None, ids: IdFactory | None = None
    ) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.ids: IdFactory = ids or RandomIds()
        self._impl: dict[str, Callable[[ToolSpec, dict[str, Any]], Any]] = {
            "create_new_client": self._create_client,
            "create_new_contact": self._create_simple,
            "create_new_opportunity": self._create_simple,
            "create_quote": self._create_simple,
            "create_contract": self._create_contract,
            "upload_document": self._create_attached,
            "add_note": self._create_attached,
            "modify_client": self._modify,
            "modify_contact": self._modify,
            "modify_opportunity": self._modify,
            "modify_quote": self._modify,
            "delete_opportunity": self._delete_opportunity,
            "delete_quote": self._delete_quote,
            "cancel_quote": self._cancel_quote,
            "clone_opportunity": self._clone_opportunity,
            "client_search": self._search,
            "contact_search": self._search,
            "opportunity_search": self._search,
            "quote_search": self._search,
            "contract_search": self._search,
            "company_search": self._search,
            "view_opportunity_details": self._opportunity_details,
            "opportunity_details": self._opportunity_details,
            "quote_details": self._quote_details,
            "compare_quotes": self._compare_quotes,
            "compare_quote_details": self._compare_quote_details,
            "summarize_opportunities": self._summarize_opportunities,
            "quote_prefixes": self._quote_prefixes,
            "ensure_client": self._ensure_client,
            "list_clients": self._list,
            "list_contacts": self._list,
            "list_opportunities": self._list,
            "list_quotes": self._list,
            "list_contracts": self._list,
            "list_documents": self._list,
            "list_notes": self._list,
            "list_companies": self._list,
            "summarize_counts": self._summarize_counts,
        }

    # == entry point =================================================================
    def call(self, tool: str, args: Mapping[str, Any] | None = None, *, agent: bool = False) -> Any:
        """Run one tool call atomically; ``agent=True`` allows only the 28 task tools."""
        spec = BY_TOOL.get(tool) if isinstance(tool, str) else None
        if spec is None or (agent and not spec.agent):
            raise CrmError(f"Unknown tool '{shorten(tool)}'.")
        if args is None:
            args = {}
        if not isinstance(args, Mapping):
            raise CrmError(f"{tool} arguments must be provided as an object.")
        bound = self._bind(spec, args)
        with atomic(self.store):
            return self._impl[tool](spec, bound)

    def _invoke(self, tool: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        spec = BY_TOOL[tool]
        names = spec.param_names
        if len(args) > len(names):
            raise CrmError(f"{tool} takes at most {len(names)} positional arguments.")
        merged = dict(zip(names, args, strict=False))
        for k, x in kwargs.items():
            if k in merged:
                raise CrmError(f"{tool} got multiple values for argument '{k}'.")
            merged[k] = x
        return self.call(tool, merged)

    @staticmethod
    def _bind(spec: ToolSpec, args: Mapping[str, Any]) -> dict[str, Any]:
        """Check argument names: unexpected ones first, then missing required ones."""
        names = spec.param_names
        bound: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in args.items():
            if not isinstance(key, str):
                raise CrmError(f"{spec.name} got an unexpected argument '{shorten(key)}'.")
            if key in names:
                bound[key] = value
            elif spec.extra is not None:
                extra[key] = value
            else:
                raise CrmError(f"{spec.name} got an unexpected argument '{shorten(key)}'.")
        for p in spec.params:
            if p.required and p.name != "updates" and bound.get(p.name) is None:
                raise CrmError(f"{spec.name} requires '{p.name}'.")
        if spec.extra == "updates":
            updates = bound.get("updates")
            if updates is None:
                updates = {}
            if not isinstance(updates, Mapping):
                assert spec.entity is not None
                raise CrmError(f"{spec.entity.name} updates must be provided as an object.")
            bound["updates"] = {**updates, **extra}
            if not bound["updates"]:
                raise CrmError("Must provide either updates dict or keyword args.")
        elif spec.extra == "criteria":
            criteria = bound.pop("criteria", None)
            if criteria is None:
                criteria = {}
            if not isinstance(criteria, Mapping):
                raise CrmError("Search criteria must be provided as an object.")
            bound = {**bound, **criteria, **extra}
        return bound

    # == lookups =====================================================================
    def _get(self, entity: Entity, raw_id: Any) -> Record:
        key = v.canonical_id(raw_id)
        record = self.store.get(entity.table, key) if key is not None else None
        if record is None:
            raise _not_found(entity, raw_id)
        return record

    def _children(self, entity: Entity, field: str, key: str) -> list[Record]:
        return self.store.find(entity.table, [Cond(field, "eq", key)])

    def _attached(self, entity: Entity, target: Entity, key: str) -> list[Record]:
        return self.store.find(
            entity.table, [Cond("entity_type", "eq", target.name), Cond("entity_id", "eq", key)]
        )

    # == validation ==================================================================
    def _check(self, f: Field, value: Any, entity: Entity, *, update: bool = False) -> Any:
        """Validate one field value; returns what to store."""
        label = f.label + " update" if update and f.name not in _FIXED_LABELS else f.label
        return v.field_value(f, value, entity.name, label=label, today=self.clock.today())

    @staticmethod
    def _phase(f: Field) -> int:
        """The spec's order of checks on create (references are checked before)."""
        if f.required and f.kind in ("text", "email", "file_name"):
            return 1
        if f.kind == "amount":
            return 2
        if f.required and f.kind == "enum":
            return 3
        return 4

    def _validate_create(self, entity: Entity, args: dict[str, Any]) -> Record:
        fields = [f for f in entity.fields if f.kind in _VALIDATED]
        record: Record = {}
        for f in sorted(fields, key=self._phase):
            record[f.name] = self._check(f, args.get(f.name), entity)
        return record

    def _new_record(self, entity: Entity, values_: Record) -> Record:
        record: Record = {}
        stamp = self.clock.now()
        for f in entity.fields:
            if f.kind == "id":
                record[f.name] = self.ids.new_id()
            elif f.kind == "timestamp":
                record[f.name] = stamp
            else:
                record[f.name] = values_.get(f.name)
        self.store.insert(entity.table, record)
        return record

    def _ensure_email_free(self, email: str, exclude: str | None = None) -> None:
        folded = v.fold(email)
        for other in self.store.find(CLIENT.table, [Cond("email", "ieq", folded)]):
            if other["client_id"] != exclude:
                raise CrmError(f"Client already exists with email '{email}'.")

    # == create ======================================================================
    def _resolve_refs(self, entity: Entity, args: dict[str, Any]) -> dict[str, str]:
        refs: dict[str, str] = {}
        for f in entity.fields:
            if f.kind == "ref" and args.get(f.name) is not None:
                assert f.ref is not None
                refs[f.name] = self._get(BY_NAME[f.ref], args[f.name])[BY_NAME[f.ref].key]
        return refs

    def _create_simple(self, spec: ToolSpec, args: dict[str, Any]) -> Record:
        entity = spec.entity
        assert entity is not None
        refs = self._resolve_refs(entity, args)
        record = self._validate_create(entity, args)
        return out(self._new_record(entity, {**record, **refs}))

    def _create_client(self, spec: ToolSpec, args: dict[str, Any]) -> Record:
        record = self._validate_create(CLIENT, args)
        self._ensure_email_free(record["email"])
        return out(self._new_record(CLIENT, record))

    def _create_contract(self, spec: ToolSpec, args: dict[str, Any]) -> Record:
        refs = self._resolve_refs(CONTRACT, args)
        if "opportunity_id" in refs:
            opp = self.store.get(OPPORTUNITY.table, refs["opportunity_id"])
            assert opp is not None
            if opp["client_id"] != refs["client_id"]:
                raise CrmError(
                    f"Opportunity '{refs['opportunity_id']}' does not belong to client "
                    f"'{refs['client_id']}'."
                )
        record = self._validate_create(CONTRACT, args)
        if record["status"] is None:
            record["status"] = "Pending"
        start, end = record["start_date"], record["end_date"]
        if start is not None and end is not None and end < start:
            raise CrmError("Contract end date must not be before its start date.")
        return out(self._new_record(CONTRACT, {**record, **refs}))

    def _create_attached(self, spec: ToolSpec, args: dict[str, Any]) -> Record:
        entity = spec.entity
        assert entity is not None
        type_field = entity.field("entity_type")
        assert type_field is not None
        target_type = self._check(type_field, args.get("entity_type"), entity)
        target = self._get(BY_NAME[target_type], args.get("entity_id"))
        record = self._validate_create(entity, args)
        record["entity_type"] = target_type
        record["entity_id"] = target[BY_NAME[target_type].key]
        return out(self._new_record(entity, record))

    # == modify ======================================================================
    def _modify(self, spec: ToolSpec, args: dict[str, Any]) -> Record:
        entity = spec.entity
        assert entity is not None
        current = self._get(entity, args[entity.key])
        key = current[entity.key]
        updates: dict[str, Any] = args["updates"]
        if entity is OPPORTUNITY and current["stage"] in CLOSED_STAGES:
            blocked = sorted(k for k in updates if k in _GUARDED)
            if blocked:
                raise CrmError(
                    f"Cannot modify closed opportunity fields {blocked!r} while stage is "
                    f"'{current['stage']}'."
                )
        fields: list[Field] = []
        for name in updates:
            f = entity.field(name) if isinstance(name, str) else None
            if f is None:
                raise CrmError(f"{entity.name} has no field named '{shorten(name)}'.")
            if not f.modifiable:
                raise CrmError(f"{entity.name} field '{name}' cannot be modified.")
            fields.append(f)
        changes = {f.name: self._check(f, updates[f.name], entity, update=True) for f in fields}
        if entity is CLIENT and "email" in changes:
            self._ensure_email_free(changes["email"], exclude=key)
        self.store.update(entity.table, key, changes)
        return out({**current, **changes})

    # == lifecycle ===================================================================
    def _delete_attachments(self, target: Entity, key: str) -> None:
        for entity in (DOCUMENT, NOTE):
            for record in self._attached(entity, target, key):
                self.store.delete(entity.table, record[entity.key])

    def _delete_quote_cascade(self, key: str) -> None:
        self._delete_attachments(QUOTE, key)
        self.store.delete(QUOTE.table, key)

    def _delete_opportunity(self, spec: ToolSpec, args: dict[str, Any]) -> Record:
        key = self._get(OPPORTUNITY, args["opportunity_id"])["opportunity_id"]
        for quote in self._children(QUOTE, "opportunity_id", key):
            self._delete_quote_cascade(quote["quote_id"])
        self._delete_attachments(OPPORTUNITY, key)
        for contract in self._children(CONTRACT, "opportunity_id", key):
            self.store.update(CONTRACT.table, contract["contract_id"], {"opportunity_id": None})
        self.store.delete(OPPORTUNITY.table, key)
        return {"deleted": True, "opportunity_id": key}

    def _delete_quote(self, spec: ToolSpec, args: dict[str, Any]) -> Record:
        key = self._get(QUOTE, args["quote_id"])["quote_id"]
        self._delete_quote_cascade(key)
        return {"deleted": True, "quote_id": key}

    def _cancel_quote(self, spec: ToolSpec, args: dict[str, Any]) -> Record:
        quote = self._get(QUOTE, args["quote_id"])
        self.store.update(QUOTE.table, quote["quote_id"], {"status": "Canceled"})
        return out({**quote, "status": "Canceled"})

    def _clone_opportunity(self, spec: ToolSpec, args: dict[str, Any]) -> Record:
        source = self._get(OPPORTUNITY, args["opportunity_id"])
        copied = {
            k: source[k]
            for k in ("client_id", "stage", "amount", "close_date", "owner", "probability", "notes")
        }
        return out(self._new_record(OPPORTUNITY, {**copied, "name": f"{source['name']} (Clone)"}))

    # == search ======================================================================
    def _criteria(self, spec: ToolSpec, args: dict[str, Any]) -> list[Cond] | None:
        """Search arguments → conditions; None when nothing can match."""
        by_name = {sf.name: sf for sf in spec.search}
        conds: list[Cond] = []
        impossible = False
        for name, value in args.items():
            sf = by_name.get(name) if isinstance(name, str) else None
            if sf is None:
                allowed = ", ".join(sorted(by_name))
                raise CrmError(
                    f"Unknown search field '{shorten(name)}' for {spec.name} (allowed: {allowed})."
                )
            if value is None:
                continue
            cond = self._criterion(sf, value)
            if cond is None:
                impossible = True
            else:
                conds.append(cond)
        return None if impossible else conds

    @staticmethod
    def _criterion(sf: SearchField, value: Any) -> Cond | None:
        name, mode = sf.name, sf.mode
        if mode in ("text", "enum", "id"):
            if not isinstance(value, str):
                raise CrmError(f"Search field '{name}' must be a string.")
            if mode == "id":
                key = v.canonical_id(value.strip())
                return None if key is None else Cond(sf.field, "eq", key)
            if not v.storable(value):
                return None
            return Cond(sf.field, "icontains" if mode == "text" else "ieq", v.fold(value.strip()))
        if mode in ("number", "min", "max"):
            if not v.is_number(value):
                raise CrmError(f"Search field '{name}' must be numeric.")
            try:
                number = float(value)
            except OverflowError:
                number = float("inf") if value > 0 else float("-inf")
            op2 = {"number": "eq", "min": "ge", "max": "le"}[mode]
            return Cond(sf.field, op2, number)  # type: ignore[arg-type]
        if mode == "int":
            if not v.is_number(value) or (isinstance(value, float) and not value.is_integer()):
                raise CrmError(f"Search field '{name}' must be a whole number.")
            if not -(2**31) < value < 2**31:
                return None
            return Cond(sf.field, "eq", int(value))
        day = v.parse_date(value) if isinstance(value, str | date) else None
        if day is None:
            raise CrmError(f"Search field '{name}' must be a valid ISO-8601 date (YYYY-MM-DD).")
        op3 = {"date": "eq", "before": "le", "after": "ge"}[mode]
        return Cond(sf.field, op3, day)  # type: ignore[arg-type]

    def _find(self, spec: ToolSpec, args: dict[str, Any]) -> list[Record]:
        assert spec.entity is not None
        conds = self._criteria(spec, args)
        return [] if conds is None else self.store.find(spec.entity.table, conds)

    def _search(self, spec: ToolSpec, args: dict[str, Any]) -> list[Record]:
        return [out(r) for r in self._find(spec, args)]

    def _summarize_opportunities(self, spec: ToolSpec, args: dict[str, Any]) -> Record:
        rows = self._find(spec, args)
        by_stage: dict[str, Record] = {}
        for stage in values(OpportunityStage):
            picked = [r["amount"] for r in rows if r["stage"] == stage]
            if picked:
                by_stage[stage] = {"count": len(picked), "total_amount": sum(picked)}
        owners: dict[str, list[float]] = {}
        for r in rows:
            owners.setdefault(r["owner"] or "Unassigned", []).append(r["amount"])
        return {
            "total_count": len(rows),
            "total_amount": sum((r["amount"] for r in rows), 0.0),
            "by_stage": by_stage,
            "by_owner": {
                o: {"count": len(a), "total_amount": sum(a)} for o, a in sorted(owners.items())
            },
        }

    # == read ========================================================================
    def _opportunity_details(self, spec: ToolSpec, args: dict[str, Any]) -> Record:
        opp = self._get(OPPORTUNITY, args["opportunity_id"])
        key = opp["opportunity_id"]
        client = self.store.get(CLIENT.table, opp["client_id"])
        return {
            **out(opp),
            "client": out(client) if client is not None else None,
            "quotes": [out(q) for q in self._children(QUOTE, "opportunity_id", key)],
            "contracts": [out(c) for c in self._children(CONTRACT, "opportunity_id", key)],
            "documents": [out(d) for d in self._attached(DOCUMENT, OPPORTUNITY, key)],
            "notes": [out(n) for n in self._attached(NOTE, OPPORTUNITY, key)],
        }

    def _quote_details(self, spec: ToolSpec, args: dict[str, Any]) -> Record:
        quote = self._get(QUOTE, args["quote_id"])
        key = quote["quote_id"]
        opp = self.store.get(OPPORTUNITY.table, quote["opportunity_id"])
        return {
            **out(quote),
            "opportunity": out(opp) if opp is not None else None,
            "documents": [out(d) for d in self._attached(DOCUMENT, QUOTE, key)],
            "notes": [out(n) for n in self._attached(NOTE, QUOTE, key)],
        }

    def _quotes(self, raw: Any) -> list[Record]:
        if not isinstance(raw, list):
            raise CrmError("Quote ids must be provided as a list.")
        if not raw:
            raise CrmError("Quote ids must not be empty.")
        return [self._get(QUOTE, q) for q in raw]

    def _compare_quotes(self, spec: ToolSpec, args: dict[str, Any]) -> list[Record]:
        return [out(q) for q in self._quotes(args["quote_ids"])]

    def _compare_quote_details(self, spec: ToolSpec, args: dict[str, Any]) -> Record:
        quotes = self._quotes(args["quote_ids"])
        return {
            "quotes": [out(q) for q in quotes],
            "amounts": {q["quote_id"]: q["amount"] for q in quotes},
            "statuses": {q["quote_id"]: q["status"] for q in quotes},
            "total_amount": sum(q["amount"] for q in quotes),
        }

    def _quote_prefixes(self, spec: ToolSpec, args: dict[str, Any]) -> list[str]:
        return sorted(
            {q["quote_prefix"] for q in self.store.find(QUOTE.table) if q["quote_prefix"]}
        )

    # == helpers =====================================================================
    def _ensure_client(self, spec: ToolSpec, args: dict[str, Any]) -> Record:
        email = v.email(args.get("email"), "Client email", "Client", required=True)
        assert email is not None
        found = self.store.find(CLIENT.table, [Cond("email", "ieq", v.fold(email))])
        if found:
            return out(found[0])
        return self._create_client(spec, args)

    def _list(self, spec: ToolSpec, args: dict[str, Any]) -> dict[str, Record]:
        entity = spec.entity
        assert entity is not None
        return {r[entity.key]: out(r) for r in self.store.find(entity.table)}

    def _summarize_counts(self, spec: ToolSpec, args: dict[str, Any]) -> dict[str, int]:
        return {table: len(self.store.find(table)) for table in LOAD_ORDER}

    # == the named API (programmatic use) ============================================
    def create_new_client(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("create_new_client", args, kwargs)

    def create_new_contact(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("create_new_contact", args, kwargs)

    def create_new_opportunity(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("create_new_opportunity", args, kwargs)

    def create_quote(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("create_quote", args, kwargs)

    def create_contract(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("create_contract", args, kwargs)

    def upload_document(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("upload_document", args, kwargs)

    def add_note(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("add_note", args, kwargs)

    def modify_client(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("modify_client", args, kwargs)

    def modify_contact(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("modify_contact", args, kwargs)

    def modify_opportunity(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("modify_opportunity", args, kwargs)

    def modify_quote(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("modify_quote", args, kwargs)

    def delete_opportunity(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("delete_opportunity", args, kwargs)

    def delete_quote(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("delete_quote", args, kwargs)

    def cancel_quote(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("cancel_quote", args, kwargs)

    def clone_opportunity(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("clone_opportunity", args, kwargs)

    def client_search(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("client_search", args, kwargs)

    def contact_search(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("contact_search", args, kwargs)

    def opportunity_search(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("opportunity_search", args, kwargs)

    def quote_search(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("quote_search", args, kwargs)

    def contract_search(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("contract_search", args, kwargs)

    def company_search(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("company_search", args, kwargs)

    def view_opportunity_details(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("view_opportunity_details", args, kwargs)

    def opportunity_details(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("opportunity_details", args, kwargs)

    def quote_details(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("quote_details", args, kwargs)

    def compare_quotes(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("compare_quotes", args, kwargs)

    def compare_quote_details(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("compare_quote_details", args, kwargs)

    def summarize_opportunities(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("summarize_opportunities", args, kwargs)

    def quote_prefixes(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("quote_prefixes", args, kwargs)

    def ensure_client(self, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("ensure_client", args, kwargs)

    def list_clients(self) -> Any:
        return self.call("list_clients")

    def list_contacts(self) -> Any:
        return self.call("list_contacts")

    def list_opportunities(self) -> Any:
        return self.call("list_opportunities")

    def list_quotes(self) -> Any:
        return self.call("list_quotes")

    def list_contracts(self) -> Any:
        return self.call("list_contracts")

    def list_documents(self) -> Any:
        return self.call("list_documents")

    def list_notes(self) -> Any:
        return self.call("list_notes")

    def list_companies(self) -> Any:
        return self.call("list_companies")

    def summarize_counts(self) -> Any:
        return self.call("summarize_counts")


# Create validates these kinds field by field; the attachment target type goes first.
_VALIDATED = v.VALIDATED_KINDS - {"entity_type"}
