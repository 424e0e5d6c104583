"""Differential property test: the memory store and the PostgreSQL store must agree.

Hypothesis generates sequences of 1-12 tool calls (all 38 tools: the 28 agent tools and
the 10 helpers) and runs every sequence from the seed world on both stores through the
one service layer. Each call's arguments follow a style: valid (ids of seed records and
of records created earlier in the sequence, sometimes upper-cased), edge (values at a
rule's boundary), invalid (wrong types, enums, dates, amounts, file names, URLs, missing
or unexpected arguments, unknown fields), hostile (SQL fragments, NUL bytes, lone
surrogates, arbitrary unicode, nested objects, NaN, infinities, huge integers, rare 1 MB
strings) or chaos (any mix). A quarter of the calls after a write search for the record
just written, so case folding and matching meet the odd text stored.

For every call both stores must return equal results (numbers compared with their
types), or both raise :class:`CrmError` with the same message; any other exception is a
failure. After the sequence the two stores must hold the same records, and those records
must satisfy the schema's invariants (foreign keys, enums, amounts, no orphans, unique
emails).

``CRMBENCH_FUZZ_EXAMPLES`` sets the number of sequences (default 50; CI runs 2000).
``CRMBENCH_FUZZ_SEED`` replays a run: a failure message names the seed it ran with.
The PostgreSQL server is the embedded one (or ``CRMBENCH_POSTGRES_URL``); when none can
be started the test errors instead of skipping, since the comparison is the point.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from pytest_crmbench.backends import open_memory_store, open_postgres_store
from pytest_crmbench.crm import CRM, CrmError, DeterministicIds, FixedClock, load_seed_world
from pytest_crmbench.crm.catalog import BY_TOOL, TOOLS, SearchField, ToolSpec
from pytest_crmbench.crm.entities import BY_NAME, BY_TABLE, ENTITIES, LOAD_ORDER, Entity, Field
from pytest_crmbench.crm.enums import (
    ALL_ENUMS,
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
from pytest_crmbench.crm.memory import MemoryStore
from pytest_crmbench.crm.seed import SeedWorld
from pytest_crmbench.crm.store import Store

pytestmark = pytest.mark.differential

EXAMPLES = int(os.environ.get("CRMBENCH_FUZZ_EXAMPLES", "50"))
SEED = int(os.environ.get("CRMBENCH_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
SCOPE = "differential"
WORLD = load_seed_world()
TODAY = WORLD.reference_date
# Every tool; the create and modify tools, which reach the most rules, three times over.
TOOL_NAMES = sorted(
    t.name for t in TOOLS for _ in range(3 if t.group in ("create", "modify") else 1)
)
MB = 2**20

_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")
_FILE_RE = re.compile(r"[A-Za-z0-9._-]*\.(csv|doc|docx|key|pdf|ppt|pptx|txt|xlsx)", re.I)


# == 1 MB strings ====================================================================
class Big:
    """A ~1 MB string, built only when the call runs so failure reports stay readable."""

    _cache: dict[tuple[str, str], str] = {}  # noqa: RUF012 - a shared cache on purpose

    def __init__(self, unit: str, suffix: str = "") -> None:
        self.unit = unit
        self.suffix = suffix

    def __repr__(self) -> str:
        return f"Big({self.unit!r} * {MB // len(self.unit)} + {self.suffix!r})"

    def build(self) -> str:
        key = (self.unit, self.suffix)
        if key not in self._cache:
            self._cache[key] = self.unit * (MB // len(self.unit)) + self.suffix
        return self._cache[key]


BIGS = [
    Big("x"),
    Big("Acme "),
    Big("é"),
    Big("%_\\"),
    Big("a", "@example.com"),
    Big("a", ".pdf"),
    Big("https://x.com/", ""),
    Big(" "),
    Big("ab", "\x00"),
]


class HugeInt:
    """10**5000: too many digits for ``repr`` (Python's int-to-str limit), so it is built
    only when the call runs and shown as ``HugeInt()`` in reports."""

    def __repr__(self) -> str:
        return "HugeInt()"

    def build(self) -> int:
        return 10**5000


def materialize(value: Any) -> Any:
    if isinstance(value, Big | HugeInt):
        return value.build()
    if isinstance(value, dict):
        return {k: materialize(x) for k, x in value.items()}
    if isinstance(value, list):
        return [materialize(x) for x in value]
    return value


# == what the sequence knows: ids and sample values ====================================
@dataclass(repr=False)
class Known:
    """Ids (per entity name) and field values (per table and field) seen so far."""

    ids: dict[str, list[str]] = field(default_factory=dict)
    created: dict[str, list[str]] = field(default_factory=dict)
    values: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    open_deals: list[str] = field(default_factory=list)  # opportunities not closed
    deals: dict[str, list[str]] = field(default_factory=dict)  # client id -> opportunity ids
    fresh: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # stored here
    serial: int = 0  # makes fresh emails distinct within a sequence
    last: tuple[str, dict[str, Any]] | None = None  # table and record of the last write

    def __repr__(self) -> str:
        return f"Known(<{sum(map(len, self.created.values()))} records created>)"

    @classmethod
    def from_world(cls, world: SeedWorld) -> Known:
        known = cls()
        for entity in ENTITIES:
            rows = world.tables[entity.table]
            known.ids[entity.name] = [r[entity.key] for r in rows]
            known.created[entity.name] = []
            for f in entity.fields:
                found = [r[f.name] for r in rows if r[f.name] is not None]
                known.values[(entity.table, f.name)] = found[:40]
        known.open_deals = [
            r["opportunity_id"]
            for r in world.tables["opportunities"]
            if r["stage"] not in CLOSED_STAGES
        ]
        for r in world.tables["opportunities"]:
            known.deals.setdefault(r["client_id"], []).append(r["opportunity_id"])
        return known

    def learn(self, tool: str, result: Any) -> None:
        spec = BY_TOOL[tool]
        entity = spec.entity
        if entity is None or not isinstance(result, dict) or entity.key not in result:
            return
        if spec.group == "modify":
            self.last = (entity.table, result)
        if spec.group != "create" and tool not in ("clone_opportunity", "ensure_client"):
            return
        self.last = (entity.table, result)
        key = result[entity.key]
        if key not in self.ids[entity.name]:
            self.ids[entity.name].append(key)
            self.created[entity.name].append(key)
            if entity.name == "Opportunity":
                self.deals.setdefault(result["client_id"], []).append(key)
                if result.get("stage") not in CLOSED_STAGES:
                    self.open_deals.append(key)
        for name, value in result.items():
            if isinstance(value, str) and len(value) < 200:
                for pools in (self.values, self.fresh):
                    pool = pools.setdefault((entity.table, name), [])
                    if value not in pool:
                        pool.append(value)


# == value pools =======================================================================
SQL = [
    "'; DROP TABLE clients; --",
    "' OR 1=1 --",
    '" OR ""="',
    "%",
    "_",
    "\\",
    "%%",
    "\\%",
    "a%b_c",
    "1; SELECT pg_sleep(10)",
    "$1",
    "%s",
    "%(name)s",
    "{}",
    "NULL",
    "null",
    "E'\\x00'",
]
ODD_TEXT = [
    "",
    " ",
    "\t\n",
    "\x00",
    "abc\x00def",
    "\ud800",
    "a\udfffb",
    "\u202eevil",
    "İstanbul",
    "ß",
    "ǅ",
    "\u212a",  # Kelvin sign: lower() folds it to "k" outside ASCII-only folding
    "\uffff",
    "\U0001f600",
    "\u0085",
    "\u3000",
    "\x1c",
    "ACME",
    "acme",
    "AcMe",
    "../../etc/passwd",
    "<script>alert(1)</script>",
]
HUGE = [10**400, -(10**400), HugeInt(), 2**63, -(2**63), 2**31, -(2**31), 2**64, 1e308, -1e308]
NUMBERS_BAD = [float("nan"), float("inf"), float("-inf"), True, False, *HUGE]
NESTED = [
    [],
    {},
    [1, 2],
    ["a"],
    [None],
    {"$gt": ""},
    {"a": [None]},
    [[]],
    {"name": "Acme"},
    [{"$ne": None}],
]
WORDS = ["Acme", "Globex", "Chen", "Initech", "Renewal", "pilot", "Umbrella", "Q3", "ops", "Nord"]
# Letters whose case mapping is not ASCII (Ä/ä, İ -> i̇, ǅ titlecase, Kelvin sign -> k,
# final sigma, ß -> SS): case-insensitive search must treat them alike on both stores.
WORDS += ["ÄRGER", "İzmir", "ǅemal", "\u212aelvin", "ΣΊΣΥΦΟΣ", "Straße"]
SAFE_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
ENUMS_MIXED = [v for e in ALL_ENUMS for v in values(e)]
BAD_DATES = [
    "2025-02-30",
    "2025-13-01",
    "12/31/2027",
    "31.12.2027",
    "20271231",
    "2027-12-31T00:00:00",
    "2027-12-31 00:00",
    " 2027-12-31",
    "2027-12-31 ",
    "2027-1-5",
    "+2027-12-31",
    "99999-01-01",
    "0000-01-01",
    "２０２７-１２-３１",
    "٢٠٢٧-١٢-٣١",
    "next friday",
    "",
    20271231,
    1.5,
    True,
    [2027, 12, 31],
    {"year": 2027},
]
BAD_URLS = [
    "ftp://x.com/a.pdf",
    "example.com/x.pdf",
    "//example.com/x",
    "HTTP://EXAMPLE.COM/X.PDF",
    "Https://example.com/x",
    "\x01http://example.com/x",
    "\x1fhttps://example.com",
    "http://",
    "http:///path",
    "http:\\\\example.com",
    "javascript:alert(1)",
    "http://[::1",
    "https://exa mple.com",
    "https://example.com/\x00",
    "https://example.com/\ud800",
    "https://" + "a" * 3000 + ".com",
    "mailto:a@b.com",
    "file:///etc/passwd",
    42,
    True,
    ["https://example.com"],
]
GOOD_URLS = [
    "https://example.com/x.pdf",
    "http://docs.example.com/contracts/C-1.pdf",
    "https://é.example/ß",
    "https://example.com:8443/a?b=c#d",
    "  https://padded.example.com/x  ",
    "http://user@host.example/p",
    "https://[::1]/x",
]
BAD_FILE_NAMES = [
    "../../etc/passwd.pdf",
    "..\\..\\boot.ini.txt",
    "/etc/passwd.pdf",
    "noext",
    "x.exe",
    "x.pdf.exe",
    "a b.pdf",
    " report.pdf",
    "report.pdf ",
    "report.pdf\n",
    "x.",
    ".",
    "résumé.pdf",
    "x;rm -rf.pdf",
    "a" * 300 + ".pdf",
    "report.p df",
    "",
    "   ",
    "x.pdf\x00.exe",
    42,
    ["a.pdf"],
]
BAD_EMAILS = [
    "not-an-email",
    "a@b",
    "a@b.c",
    "a@@b.com",
    "@example.com",
    "a@.com",
    "a..b@example.com",
    ".a@example.com",
    "ä@example.com",
    "a@exämple.com",
    "a b@example.com",
    "a@example.com\n",
    "a" * 250 + "@example.com",
    "a@example.com\x00",
    42,
    True,
    [],
]
BAD_AMOUNTS = [0, 0.0, -0.0, -1, -0.01, -5e-324, 10_000_000.000001, 10_000_001, 1e8, "120K"]
BAD_AMOUNTS += ["1000", "1,000", "", *NUMBERS_BAD, [], {}, None]
BAD_PROBABILITIES = [0, 100, -1, 50.5, 0.5, 99.9, 1e300, "50", "50%", *NUMBERS_BAD, [50], {}]
UNKNOWN_ARGS = ["foo", "id", "Name", "client_ID", "__class__", "", " name", "updates ", *SQL[:3]]


JSON_TREES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
EMAIL_LOCALS = st.from_regex(r"[a-z0-9]{1,8}(\.[a-z0-9+_-]{1,6})?", fullmatch=True)
FILE_NAMES = st.from_regex(
    r"[A-Za-z0-9_-]{1,20}(\.[A-Za-z0-9]{1,4})?\.(pdf|PDF|docx|csv|txt|xlsx|Key|ppt|pptx|doc)",
    fullmatch=True,
) | st.sampled_from([".pdf", "a.b.c.txt", "-.csv", "_.docx"])


@st.composite
def hostile(draw: st.DrawFn) -> Any:
    """Anything at all, with a rare 1 MB string."""
    which = draw(st.integers(0, 9))
    if which == 0:
        return draw(st.sampled_from(SQL))
    if which == 1:
        return draw(st.sampled_from(ODD_TEXT))
    if which == 2:
        return draw(st.text(max_size=40))
    if which == 3:
        return draw(st.sampled_from([*NUMBERS_BAD, -0.0, 0, 1, -1]))
    if which == 4:
        return draw(st.sampled_from(NESTED))
    if which == 5:
        return draw(st.one_of(st.floats(), st.integers(), st.booleans(), st.none()))
    if which == 6:
        return draw(st.sampled_from(ENUMS_MIXED + WORDS))
    if which == 7:
        return draw(JSON_TREES)
    if which == 8:
        # Rare: about one hostile value in 40 is a 1 MB string.
        return draw(st.sampled_from(BIGS)) if draw(st.integers(0, 3)) == 3 else "x" * 300
    return draw(st.sampled_from([*SQL, *ODD_TEXT])) + draw(st.sampled_from(WORDS))


def _case_variant(draw: st.DrawFn, text: str) -> str:
    how = draw(st.integers(0, 3))
    if how == 1:
        return text.upper()
    if how == 2:
        return text.lower()
    if how == 3:
        return text.swapcase()
    return text


# == ids ===============================================================================
@st.composite
def ids(draw: st.DrawFn, known: Known, entity: str, *, good: bool = True) -> Any:
    """An id of ``entity``: existing ones (seed or created in this sequence, sometimes
    upper-cased; rarely a wrong one), or with ``good=False`` wrong ones and junk."""
    pool = known.ids[entity]
    if good:
        how = draw(st.integers(0, 19))
        if how <= 9 or (how <= 13 and not known.created[entity]):
            return draw(st.sampled_from(pool))
        if how <= 13:
            return draw(st.sampled_from(known.created[entity]))
        if how <= 17:
            return draw(st.sampled_from(pool)).upper()
        bad = "other" if how == 18 else "variant"
    else:
        bad = draw(st.sampled_from(["other", "variant", "junk"]))
    if bad == "other":
        other = draw(st.sampled_from(sorted(known.ids)))
        return draw(st.sampled_from(known.ids[other]))
    if bad == "variant":
        key = draw(st.sampled_from(pool))
        return draw(
            st.sampled_from(
                [
                    f" {key} ",
                    "{" + key + "}",
                    key.replace("-", ""),
                    key[:-1],
                    key + "0",
                    "urn:uuid:" + key,
                    key[:-1] + "g",
                ]
            )
        )
    return draw(
        st.one_of(
            st.uuids().map(str),
            st.sampled_from(
                [
                    "00000000-0000-0000-0000-000000000000",
                    "not-a-uuid",
                    "",
                    "1",
                    1,
                    0,
                    -1,
                    True,
                    1.5,
                    10**400,
                    *SQL[:4],
                    "\x00",
                    "\ud800",
                    *NESTED[:3],
                ]
            ),
            hostile(),
        )
    )


# == field values ======================================================================
@st.composite
def valid_value(draw: st.DrawFn, known: Known, entity: Entity, f: Field) -> Any:
    """A value the CRM should accept for field ``f`` (modulo uniqueness and refs)."""
    kind = f.kind
    pool = known.values.get((entity.table, f.name), [])
    if kind == "entity_ref":
        return draw(ids(known, draw(st.sampled_from(values(NoteEntityType)))))
    if kind in ("id", "ref"):
        return draw(ids(known, f.ref or entity.name))
    if kind == "text":
        how = draw(st.integers(0, 4))
        if how == 0 and pool:
            return draw(st.sampled_from(pool))
        if how == 1:
            return draw(st.sampled_from(WORDS)) + draw(st.sampled_from(["", " Corp", " 2", "-x"]))
        if how == 2:
            return "  " + draw(st.sampled_from(WORDS)) + "\t"
        if how == 3 and not f.required:
            return draw(st.sampled_from([None, "", "  "]))
        return draw(SAFE_TEXT.filter(str.strip))
    if kind == "email":
        how = draw(st.integers(0, 5))
        clients = known.values.get(("clients", "email"), [])
        if how == 4 and clients:  # a client's email, maybe re-cased: a duplicate
            return _case_variant(draw, draw(st.sampled_from(clients)))
        if how == 5 and not f.required:
            return None
        known.serial += 1
        local = draw(EMAIL_LOCALS) + str(known.serial)
        domain = draw(st.sampled_from(["example.com", "acme.test", "Globex.IO", "x.co.uk"]))
        pad = draw(st.sampled_from(["", "", " ", "\t"]))
        return f"{pad}{local}@{domain}{pad}"
    if kind in ("enum", "entity_type"):
        assert f.enum is not None
        return draw(st.sampled_from(values(f.enum)))
    if kind in ("amount", "value"):
        options = [
            st.integers(1, 10_000_000),
            st.floats(0, 1e7, exclude_min=True),
            st.sampled_from([10_000_000, 1e7, 0.01, 5e-324, 1234.5, 99.99]),
        ]
        if pool:
            options.append(st.sampled_from(pool))
        if kind == "value":
            options.append(st.sampled_from([0, 0.0, None]))
        return draw(st.one_of(options))
    if kind == "probability":
        return draw(st.one_of(st.integers(1, 99), st.sampled_from([None, 50.0, 1, 99])))
    if kind == "close_date":
        day = draw(st.dates(TODAY, TODAY + timedelta(days=4000)))
        return day if draw(st.integers(0, 19)) == 0 else day.isoformat()
    if kind == "date":
        if draw(st.booleans()):
            return None
        day = draw(st.dates(date(2000, 1, 1), date(2040, 12, 31)) | st.dates())
        return day.isoformat()
    if kind == "url":
        return draw(st.sampled_from([*GOOD_URLS, None, ""]))
    if kind == "file_name":
        return draw(FILE_NAMES)
    raise AssertionError(kind)


EDGE: dict[str, list[Any]] = {
    "text": [
        "x",
        " x ",
        "\u3000x\u3000",
        "\x1cx\x1f",
        "\u0085x\xa0",
        "x\r\ny",
        "ÄCME",
        "İ",
        "ß",
        "ǅ",
        "\u212a",
        "\U0001f600",
        "\uffff",
        "\u202ex",
        "e\u0301",
        *SQL,
        "x" * 10_000,
    ],
    "email": [
        "A.B+c@Example.COM",
        "x@x.io",
        " \u3000a@b.co\u3000 ",
        "a" * 64 + "@example.com",
        "a" * 242 + "@example.com",  # 254 characters: the longest accepted
        "a" * 243 + "@example.com",
        "o'brien@example.com",
        "a@b-c.example.museum",
        "a@b.c",
        "a@-b.com",
        "%@example.com",
        "_@example.com",
        "\\@example.com",
    ],
    "amount": [
        5e-324,
        1e-300,
        1e-7,
        0.01,
        1,
        123456.789,
        9999999.999999998,
        10_000_000,
        1e7,
        10_000_000.000000002,
        2**53 + 1,
        -0.0,
        0,
        True,
    ],
    "probability": [1, 99, 1.0, 99.0, 0.99999, 99.0000001, 0, 100, True, 2**53 + 1, -0.0],
    "close_date": [
        TODAY.isoformat(),
        (TODAY - timedelta(days=1)).isoformat(),
        TODAY,
        "9999-12-31",
        "0001-01-01",
        f"{TODAY.isoformat()}T00:00:00",
        f"{TODAY.isoformat()}Z",
    ],
    "date": ["0001-01-01", "9999-12-31", "2024-02-29", "2023-02-29", "1970-01-01", TODAY],
    "url": [
        "HTTP://EXAMPLE.COM/X.PDF",
        "Https://example.com/x",
        "\x01http://example.com/x",
        "\x08https://example.com/x",
        "\x7fhttps://example.com/x",
        "\u200bhttps://example.com/x",
        "https://x",
        "http://a:0/",
        "https://[::1]:8080/x",
        "https://é.example/ß?q=%00",
        "https://example.com/" + "a" * 2028,  # 2048 characters: the longest accepted
        "https://example.com/" + "a" * 2029,
        "https://example.com/'; DROP TABLE contracts; --",
    ],
    "file_name": [
        ".pdf",
        "A.PDF",
        "a.Pdf",
        "-.csv",
        "..pdf",
        "a..pdf",
        "x.pdf.txt",
        "a" * 251 + ".pdf",  # 255 characters: the longest accepted
        "a" * 252 + ".pdf",
        "x.PdF",
        "x.pdf.",
        "x.k ey",
    ],
}
EDGE["value"] = EDGE["amount"]


@st.composite
def edge_value(draw: st.DrawFn, known: Known, entity: Entity, f: Field) -> Any:
    """A value at the boundary of what field ``f`` accepts (on either side)."""
    kind = f.kind
    if kind in ("id", "ref", "entity_ref"):
        key = draw(ids(known, f.ref or draw(st.sampled_from(values(NoteEntityType)))))
        if not isinstance(key, str):
            return key
        return draw(st.sampled_from([key.upper(), f" {key}", key.swapcase(), key]))
    if kind in ("enum", "entity_type"):
        assert f.enum is not None
        good = draw(st.sampled_from(values(f.enum)))
        return draw(st.sampled_from([good, good.swapcase(), f"{good}\u00a0", f"\u200b{good}"]))
    return draw(st.sampled_from(EDGE[kind]))


@st.composite
def invalid_value(draw: st.DrawFn, known: Known, entity: Entity, f: Field) -> Any:
    """A value of the wrong shape for field ``f`` (or, sometimes, anything hostile)."""
    kind = f.kind
    if draw(st.integers(0, 4)) == 0:
        return draw(hostile())
    if kind in ("id", "ref", "entity_ref"):
        return draw(ids(known, draw(st.sampled_from(sorted(known.ids))), good=False))
    if kind == "text":
        return draw(st.sampled_from(["", "   ", "\t\n", "\x00", "a\ud800", 42, True, [], {}]))
    if kind == "email":
        return draw(st.sampled_from(BAD_EMAILS))
    if kind in ("enum", "entity_type"):
        assert f.enum is not None
        good = draw(st.sampled_from(values(f.enum)))
        return draw(
            st.sampled_from(
                [
                    good.lower(),
                    good.upper(),
                    f" {good}",
                    f"{good} ",
                    f"\t{good}\n",
                    good.replace("-", " "),
                    "",
                    "Contact",
                    "Company",
                    1,
                    True,
                    [good],
                ]
            )
            | st.sampled_from(ENUMS_MIXED)
        )
    if kind in ("amount", "value"):
        return draw(
            st.sampled_from(BAD_AMOUNTS) | st.floats(max_value=0) | st.floats(min_value=1e7)
        )
    if kind == "probability":
        return draw(st.sampled_from(BAD_PROBABILITIES) | st.floats())
    if kind == "close_date":
        past = draw(st.dates(max_value=TODAY - timedelta(days=1)))
        return draw(st.sampled_from([past.isoformat(), past, *BAD_DATES]))
    if kind == "date":
        return draw(st.sampled_from(BAD_DATES))
    if kind == "url":
        return draw(st.sampled_from(BAD_URLS))
    if kind == "file_name":
        return draw(st.sampled_from(BAD_FILE_NAMES))
    raise AssertionError(kind)


@st.composite
def value_for(draw: st.DrawFn, known: Known, entity: Entity, f: Field, how: str) -> Any:
    """A ``valid``, ``invalid`` (wrong for this field) or ``hostile`` value for ``f``."""
    if how == "valid":
        return draw(valid_value(known, entity, f))
    if how == "edge":
        return draw(edge_value(known, entity, f))
    if how == "invalid":
        return draw(invalid_value(known, entity, f))
    return draw(hostile())


@st.composite
def plan(draw: st.DrawFn, names: list[str], style: str) -> dict[str, str]:
    """How to make each argument: ``edge``/``invalid``/``hostile`` change one or two
    arguments (so the others pass and the changed one reaches its check); ``chaos`` any."""
    how = dict.fromkeys(names, "valid")
    if not names or style == "valid":
        return how
    if style == "chaos":
        for name in names:
            how[name] = draw(st.sampled_from(["valid", "valid", "edge", "invalid", "hostile"]))
        return how
    for name in draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True)):
        how[name] = style
    return how


# == arguments per tool group ==========================================================
@st.composite
def create_args(draw: st.DrawFn, known: Known, spec: ToolSpec, style: str) -> dict[str, Any]:
    entity = spec.entity
    assert entity is not None
    # Optional arguments are left out one time in three, unless chosen to be spoiled.
    included = [p.name for p in spec.params if p.required or draw(st.integers(0, 2))]
    how = draw(plan(list(spec.param_names), style))
    names = [n for n in spec.param_names if n in included or how[n] != "valid"]
    args: dict[str, Any] = {}
    target: str | None = None
    for name in names:
        f = entity.field(name)
        assert f is not None
        if f.kind == "entity_ref" and target is not None and how[name] == "valid":
            args[name] = draw(ids(known, target))  # mostly a record of the named type
        else:
            args[name] = draw(value_for(known, entity, f, how[name]))
        if f.kind == "entity_type" and args[name] in values(f.enum):  # type: ignore[arg-type]
            target = args[name]
    client = args.get("client_id")
    if spec.name == "create_contract" and "opportunity_id" in args and isinstance(client, str):
        # Mostly pair the client with one of its own opportunities.
        deals = known.deals.get(client.lower())
        if deals and how["opportunity_id"] == "valid" and draw(st.integers(0, 3)):
            args["opportunity_id"] = draw(st.sampled_from(deals))
    return args


@st.composite
def updates_for(draw: st.DrawFn, known: Known, entity: Entity, style: str) -> dict[str, Any]:
    modifiable = [f for f in entity.fields if f.modifiable]
    chosen = draw(st.lists(st.sampled_from(modifiable), min_size=1, max_size=3, unique=True))
    how = draw(plan([f.name for f in chosen], style))
    updates: dict[str, Any] = {}
    for f in chosen:
        closing = entity.name == "Opportunity" and f.name == "stage" and how[f.name] == "valid"
        if closing and draw(st.booleans()):
            updates[f.name] = draw(st.sampled_from(["Closed-Won", "Closed-Lost"]))
        else:
            updates[f.name] = draw(value_for(known, entity, f, how[f.name]))
    if style != "valid" and draw(st.integers(0, 3)) == 0:
        fixed = [f.name for f in entity.fields if not f.modifiable]
        name = draw(
            st.sampled_from([*fixed, "nonexistent", "Name", "stage ", "amount;", *SQL[:3], ""])
        )
        updates[name] = draw(hostile() | st.sampled_from(known.ids[entity.name]))
    return updates


@st.composite
def modify_args(draw: st.DrawFn, known: Known, spec: ToolSpec, style: str) -> Any:
    entity = spec.entity
    assert entity is not None
    key_style = style if style != "valid" and draw(st.integers(0, 3)) == 0 else "valid"
    if entity.name == "Opportunity" and key_style == "valid" and draw(st.booleans()):
        args: dict[str, Any] = {entity.key: draw(st.sampled_from(known.open_deals))}
    else:
        args = {entity.key: draw(value_for(known, entity, entity.field(entity.key), key_style))}
    updates = draw(updates_for(known, entity, style))
    how = draw(st.integers(0, 9))
    if how <= 5:
        args["updates"] = updates
    elif how <= 7:
        args.update({k: x for k, x in updates.items() if k not in args})  # keyword style
    elif how == 8:
        items = list(updates.items())
        args["updates"] = dict(items[:1])
        args.update({k: x for k, x in items[1:] if k not in args})
    else:
        args["updates"] = draw(
            st.sampled_from([None, {}, [], "stage=Closed-Won", 42, True, [["stage", "Proposal"]]])
        )
    return args


def _search_entity(spec: ToolSpec, sf: SearchField) -> str:
    assert spec.entity is not None
    f = spec.entity.field(sf.field)
    assert f is not None
    return f.ref or spec.entity.name


@st.composite
def criterion(draw: st.DrawFn, known: Known, spec: ToolSpec, sf: SearchField, how: str) -> Any:
    """A search value: ``valid`` ones may match nothing; ``invalid`` ones are refused."""
    assert spec.entity is not None
    f = spec.entity.field(sf.field)
    assert f is not None
    if how == "hostile":
        return draw(hostile())
    pool = known.values.get((spec.entity.table, sf.field), [])
    mode = sf.mode
    if how == "edge":
        kind = {"text": "text", "date": "date", "before": "date", "after": "date"}
        return draw(st.sampled_from(EDGE[kind.get(mode, "amount")]))
    bad_type = st.sampled_from([42, 1.5, True, [], {}, ["x"]])
    if mode == "text":
        if how == "invalid":
            return draw(bad_type)
        fresh = known.fresh.get((spec.entity.table, sf.field))
        if fresh and draw(st.booleans()):  # text stored by this sequence: odd characters
            pool = fresh
        if pool and draw(st.integers(0, 3)):
            text = draw(st.sampled_from(pool))
            start = draw(st.integers(0, len(text)))
            end = len(text) - draw(st.integers(0, len(text) - start))  # rarely empty
            return _case_variant(draw, text[start:end])
        return draw(st.sampled_from([*SQL, *ODD_TEXT, None]) | SAFE_TEXT)
    if mode == "enum":
        assert f.enum is not None
        if how == "invalid":
            return draw(bad_type)
        good = draw(st.sampled_from(values(f.enum)))
        pad = draw(st.sampled_from(["", "", " ", "\t"]))
        other = st.sampled_from(["Closed Won", "", "%", "_", "Activ", "\x00", "\ud800", None])
        return pad + _case_variant(draw, good) + pad if draw(st.integers(0, 4)) else draw(other)
    if mode == "id":
        if how == "invalid":
            return draw(bad_type)
        return draw(ids(known, _search_entity(spec, sf)))
    if mode in ("number", "min", "max"):
        if how == "invalid":
            return draw(st.sampled_from([*NUMBERS_BAD[:5], "1000", "", [], {}]))
        number_pool = [x for x in pool if isinstance(x, float)] or [1000.0]
        return draw(
            st.sampled_from(number_pool)
            | st.integers(-10, 10_000_001)
            | st.floats(allow_nan=False, allow_infinity=False)
            | st.sampled_from([*HUGE, 0, -0.0, 5e-324, None])
        )
    if mode == "int":
        if how == "invalid":
            return draw(st.sampled_from([50.5, 0.1, *NUMBERS_BAD[:5], "50", [], {}]))
        return draw(
            st.integers(-5, 105)
            | st.sampled_from([50.0, 2**31 - 1, 2**31, -(2**31), -(2**31) + 1, *HUGE[:2], None])
        )
    if how == "invalid":
        return draw(st.sampled_from(BAD_DATES))
    day_pool = [x for x in pool if isinstance(x, date)] or [TODAY]
    day = draw(st.sampled_from(day_pool) | st.dates())
    return draw(st.sampled_from([day.isoformat(), day.isoformat(), day, None]))


@st.composite
def search_args(draw: st.DrawFn, known: Known, spec: ToolSpec, style: str) -> Any:
    chosen = draw(st.lists(st.sampled_from(spec.search), max_size=3, unique=True))
    how = draw(plan([sf.name for sf in chosen], style))
    criteria = {sf.name: draw(criterion(known, spec, sf, how[sf.name])) for sf in chosen}
    if style != "valid" and draw(st.integers(0, 3)) == 0:
        criteria[draw(st.sampled_from(["foo", "Name", "amount_min", "seq", *SQL[:2]]))] = "x"
    shape = draw(st.integers(0, 5))
    if shape <= 2:
        return criteria
    if shape == 3:
        return {"criteria": criteria}
    if shape == 4:
        items = list(criteria.items())
        return {**dict(items[:1]), "criteria": dict(items[1:])}
    if style == "valid":
        return {"criteria": None}
    return {"criteria": draw(st.sampled_from([[], "name=Acme", 42, True, [["name", "Acme"]]]))}


@st.composite
def quote_id_list(draw: st.DrawFn, known: Known, style: str) -> Any:
    if style != "valid" and draw(st.integers(0, 2)) == 0:
        return draw(st.sampled_from([[], "", "abc", 42, {}, {"0": known.ids["Quote"][0]}]))
    return draw(st.lists(ids(known, "Quote"), min_size=1, max_size=4))


@st.composite
def arguments(draw: st.DrawFn, known: Known, spec: ToolSpec, style: str) -> Any:
    group = spec.group
    if spec.name in ("compare_quotes", "compare_quote_details"):
        args: Any = {"quote_ids": draw(quote_id_list(known, style))}
    elif spec.extra == "criteria":
        args = draw(search_args(known, spec, style))
    elif spec.extra == "updates":
        args = draw(modify_args(known, spec, style))
    elif group == "create" or spec.name == "ensure_client":
        args = draw(create_args(known, spec, style))
    elif spec.params:  # one id: lifecycle and read tools
        entity = spec.entity
        assert entity is not None
        key = spec.params[0].name
        how = "valid" if style == "chaos" else style
        args = {key: draw(value_for(known, entity, entity.field(key), how))}
    else:
        args = {}
    # Structural mutations: a missing argument, an unexpected one, a non-object. (Rare
    # branches sit away from 0, which Hypothesis draws more often than the others.)
    mutation = draw(st.integers(0, 29))
    if mutation in (26, 27) and isinstance(args, dict) and args:
        del args[draw(st.sampled_from(sorted(args)))]
    elif mutation in (28, 29) and isinstance(args, dict):
        others = [p.name for t in TOOLS for p in t.params]
        name = draw(st.sampled_from(UNKNOWN_ARGS + others))
        args[name] = draw(hostile() | st.sampled_from(WORDS))
    elif mutation == 25:
        args = draw(st.sampled_from([None, [], "x", 42, [["name", "Acme"]]]))
    return args


@st.composite
def matching(draw: st.DrawFn, sf: SearchField, value: Any) -> Any:
    """A search value that should find the record holding ``value`` in ``sf.field``."""
    if value is None:
        return None
    if sf.mode == "text":
        start = draw(st.integers(0, len(value)))
        end = len(value) - draw(st.integers(0, len(value) - start))  # rarely empty
        return _case_variant(draw, value[start:end])
    if sf.mode in ("enum", "id"):
        return draw(st.sampled_from(["", " "])) + _case_variant(draw, value)
    return value  # numbers, and dates as ISO strings


FOLLOW_UPS: dict[str, list[str]] = {}
for _spec in TOOLS:
    if _spec.extra == "criteria" and _spec.entity is not None:
        FOLLOW_UPS.setdefault(_spec.entity.table, []).append(_spec.name)


@st.composite
def follow_up(draw: st.DrawFn, table: str, record: dict[str, Any]) -> tuple[str, Any]:
    """A search for the record just written, by one or two of its fields."""
    tool = draw(st.sampled_from(FOLLOW_UPS[table]))
    spec = BY_TOOL[tool]
    usable = [sf for sf in spec.search if record.get(sf.field) is not None] or [*spec.search]
    chosen = draw(st.lists(st.sampled_from(usable), min_size=1, max_size=2, unique=True))
    return tool, {sf.name: draw(matching(sf, record.get(sf.field))) for sf in chosen}


STYLES = ["valid", "valid", "valid", "edge", "edge", "invalid", "invalid", "hostile", "chaos"]


@st.composite
def calls(draw: st.DrawFn, known: Known) -> tuple[str, Any]:
    last = known.last
    if last is not None and last[0] in FOLLOW_UPS and draw(st.integers(0, 3)) == 3:
        return draw(follow_up(*last))
    tool = draw(st.sampled_from(TOOL_NAMES))
    style = draw(st.sampled_from(STYLES))
    return tool, draw(arguments(known, BY_TOOL[tool], style))


# == running and comparing =============================================================
def run(crm: CRM, tool: str, args: Any) -> tuple[str, Any]:
    """("ok", result) | ("error", CrmError message) | ("crash", traceback text)."""
    try:
        return "ok", crm.call(tool, args)
    except CrmError as exc:
        return "error", exc.message
    except Exception:
        return "crash", traceback.format_exc()


def canon(value: Any) -> Any:
    """``value`` with the type of every number and date made explicit, so that the
    comparison tells 50 from 50.0 (and True from 1), which ``==`` does not."""
    if isinstance(value, dict):
        return {k: canon(x) for k, x in value.items()}
    if isinstance(value, list | tuple):
        return [canon(x) for x in value]
    if isinstance(value, bool | int):
        return (type(value).__name__, value)
    if isinstance(value, float):
        return ("float", repr(value))
    if isinstance(value, date):  # dates and timestamps (whatever the tzinfo object)
        return (type(value).__name__, value.isoformat())
    return value


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


def _enum_ok(value: Any, enum: Any) -> bool:
    return value in values(enum)


def _storable(text: str) -> bool:
    return _UNSTORABLE_RE.search(text) is None


def check_invariants(dump: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The schema's rules, checked on a whole store's content."""
    keys = {t: {r[BY_TABLE[t].key] for r in rows} for t, rows in dump.items()}
    by_id = {t: {r[BY_TABLE[t].key]: r for r in rows} for t, rows in dump.items()}
    problems: list[str] = []

    def expect(ok: bool, what: str, record: dict[str, Any]) -> None:
        if not ok:
            problems.append(f"{what}: {_short(record)}")

    for table, rows in dump.items():
        entity = BY_TABLE[table]
        expect(len(keys[table]) == len(rows), f"{table}: duplicate ids", {})
        for r in rows:
            expect(set(r) == set(entity.field_names), f"{table}: wrong fields", r)
            for f in entity.fields:
                x = r[f.name]
                if f.kind in ("id", "ref", "entity_ref") and x is not None:
                    expect(isinstance(x, str) and bool(_UUID_RE.fullmatch(x)), "bad id", r)
                if f.required and f.kind in ("text", "email"):
                    expect(isinstance(x, str) and bool(x.strip()), f"{f.name} blank", r)
                if isinstance(x, str):
                    expect(_storable(x), f"{f.name} not storable", r)
                if f.kind == "timestamp":
                    expect(isinstance(x, datetime) and x.tzinfo is not None, f.name, r)
                if f.kind in ("date", "close_date"):
                    expect(x is None or type(x) is date, f.name, r)
                if f.kind == "url":
                    expect(x is None or re.match(r"https?://", x) is not None, f.name, r)
    for r in dump["clients"]:
        expect(_enum_ok(r["status"], ClientStatus), "client status", r)
    emails = [r["email"].lower() for r in dump["clients"]]
    expect(len(emails) == len(set(emails)), "client emails not unique", {"emails": emails})
    for r in dump["contacts"]:
        expect(r["client_id"] in keys["clients"], "contact without client", r)
    for table in ("opportunities", "quotes"):
        for r in dump[table]:
            a = r["amount"]
            ok = isinstance(a, float) and math.isfinite(a) and 0 < a <= 10_000_000
            expect(ok, f"{table} amount", r)
    for r in dump["opportunities"]:
        expect(r["client_id"] in keys["clients"], "opportunity without client", r)
        expect(_enum_ok(r["stage"], OpportunityStage), "opportunity stage", r)
        p = r["probability"]
        expect(p is None or (type(p) is int and 1 <= p <= 99), "probability", r)
    for r in dump["quotes"]:
        expect(r["opportunity_id"] in keys["opportunities"], "quote without opportunity", r)
        expect(_enum_ok(r["status"], QuoteStatus), "quote status", r)
    for r in dump["contracts"]:
        expect(r["client_id"] in keys["clients"], "contract without client", r)
        opp = r["opportunity_id"]
        if opp is not None:
            owner = by_id["opportunities"].get(opp, {}).get("client_id")
            expect(owner == r["client_id"], "contract opportunity of another client", r)
        expect(_enum_ok(r["status"], ContractStatus), "contract status", r)
        x = r["value"]
        ok = x is None or (isinstance(x, float) and math.isfinite(x) and 0 <= x <= 10_000_000)
        expect(ok, "contract value", r)
        start, end = r["start_date"], r["end_date"]
        expect(start is None or end is None or end >= start, "contract dates reversed", r)
    expect(dump["companies"] == WORLD.tables["companies"], "companies changed", {})
    for r in dump["companies"]:
        expect(_enum_ok(r["type"], CompanyType), "company type", r)
    for table, enum in (("documents", DocumentEntityType), ("notes", NoteEntityType)):
        for r in dump[table]:
            ok = _enum_ok(r["entity_type"], enum)
            expect(ok, f"{table} entity type", r)
            if ok:
                target = BY_NAME[r["entity_type"]].table
                expect(r["entity_id"] in keys[target], f"orphan {table[:-1]}", r)
    for r in dump["documents"]:
        name = r["file_name"]
        expect(bool(_FILE_RE.fullmatch(name)) and len(name) <= 255, "file name", r)
    return problems


# == the tests =========================================================================
def test_every_tool_is_generated() -> None:
    assert len(BY_TOOL) == 38
    assert set(TOOL_NAMES) == set(BY_TOOL)


@pytest.fixture(scope="module")
def stores(pg_servers: Any, world: SeedWorld) -> Iterator[tuple[MemoryStore, Store]]:
    """A seeded memory store and a seeded PostgreSQL store (own database)."""
    from pytest_crmbench.postgres import drop_database

    dbname = f"crmbench_differential_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    pg = open_postgres_store(pg_servers.url("postgres", dbname), world)
    memory = open_memory_store(world)
    try:
        yield memory, pg
    finally:
        pg.close()
        drop_database(pg_servers.servers["postgres"].admin_url, dbname)


@seed(SEED)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(data=st.data())
def test_memory_and_postgres_agree(
    stores: tuple[MemoryStore, Store], world: SeedWorld, data: st.DataObject
) -> None:
    memory, pg = stores
    memory.reset()
    pg.reset()
    clock = FixedClock(world.reference_date)
    crms = {
        "memory": CRM(memory, clock=clock, ids=DeterministicIds(SCOPE)),
        "postgres": CRM(pg, clock=clock, ids=DeterministicIds(SCOPE)),
    }
    known = Known.from_world(world)
    log: list[str] = []

    def fail(why: str) -> None:
        steps = "\n".join(log)
        pytest.fail(
            f"{why}\n-- calls so far:\n{steps}\n"
            f"(rerun with CRMBENCH_FUZZ_SEED={SEED} to replay this run)"
        )

    length = data.draw(st.integers(1, 12), label="length")
    for step in range(1, length + 1):
        tool, drawn = data.draw(calls(known), label=f"call {step}")
        args = materialize(drawn)
        outcomes = {name: run(crm, tool, args) for name, crm in crms.items()}
        log.append(f"{step}. {tool}({_short(drawn)}) -> {_short(outcomes['memory'], 200)}")
        for name, (kind, payload) in outcomes.items():
            if kind == "crash":
                fail(f"{name} store raised a non-CrmError exception on {tool}:\n{payload}")
            if kind == "error":
                assert isinstance(payload, str) and payload.strip(), "empty error message"
                if len(payload) > 2000:
                    fail(f"{name}: error message of {len(payload)} characters on {tool}")
        if canon(outcomes["memory"]) != canon(outcomes["postgres"]):
            fail(
                f"stores disagree on {tool}:\n  memory:   {_short(outcomes['memory'], 2000)}"
                f"\n  postgres: {_short(outcomes['postgres'], 2000)}"
            )
        kind, result = outcomes["memory"]
        if kind == "ok":
            try:
                json.dumps(result, allow_nan=False)
            except (TypeError, ValueError) as exc:
                fail(f"{tool} returned a result that is not JSON-ready: {exc}")
            known.learn(tool, result)

    dumps = {"memory": memory.dump(), "postgres": pg.dump()}
    if canon(dumps["memory"]) != canon(dumps["postgres"]):
        diff = [
            f"{t}: memory has {len(dumps['memory'][t])}, postgres {len(dumps['postgres'][t])}; "
            f"first difference: "
            + next(
                (
                    f"{_short(a, 600)} != {_short(b, 600)}"
                    for a, b in zip(dumps["memory"][t], dumps["postgres"][t], strict=False)
                    if canon(a) != canon(b)
                ),
                "(extra rows)",
            )
            for t in LOAD_ORDER
            if canon(dumps["memory"][t]) != canon(dumps["postgres"][t])
        ]
        fail("final states differ:\n" + "\n".join(diff))
    for name, dump in dumps.items():
        problems = check_invariants(dump)
        if problems:
            fail(f"the final {name} state breaks invariants:\n" + "\n".join(problems[:20]))
