"""Field validators: one function per field kind, raising the spec's exact messages.

Validators return the normalised value to store (trimmed text, float amounts, int
probabilities, ``date`` objects). They are pure: the service decides the order in which
they run (the spec fixes it) and what "today" is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pytest_crmbench.crm.errors import CrmError

if TYPE_CHECKING:
    from pytest_crmbench.crm.entities import Field

MAX_AMOUNT = 10_000_000
ALLOWED_EXTENSIONS = ("csv", "doc", "docx", "key", "pdf", "ppt", "pptx", "txt", "xlsx")

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_FILE_NAME_RE = re.compile(r"[A-Za-z0-9._-]+")
_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL_RE = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*\.[A-Za-z]{{2,63}}")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(text: str) -> str:
    """Case-fold ASCII letters only.

    PostgreSQL's ``lower()`` under the "C" collation folds exactly these, so both stores
    agree on case-insensitive matching whatever the server's locale.
    """
    return text.translate(_ASCII_LOWER)


def storable(text: str) -> bool:
    """True when PostgreSQL can store the text (no NUL, no lone surrogate)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def canonical_id(value: Any) -> str | None:
    """The lower-case UUID string, or None when ``value`` is not a well-formed id."""
    if isinstance(value, str) and _UUID_RE.fullmatch(value):
        return value.lower()
    return None


def is_number(value: Any) -> bool:
    """JSON numbers only: not booleans, not numeric strings, not NaN or infinities."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not (isinstance(value, float) and not math.isfinite(value))


def text(value: Any, label: str, *, required: bool) -> str | None:
    """Free text: trimmed; blank is an error when required, absent when optional."""
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise CrmError(f"{label} must be provided as a string.")
    if not storable(value):
        raise CrmError(f"{label} must not contain NUL bytes or unpaired surrogates.")
    stripped = value.strip()
    if not stripped:
        if required:
            raise CrmError(f"{label} must not be blank or whitespace.")
        return None
    return stripped


def enum_value(value: Any, enum: type[StrEnum], label: str) -> str:
    """Exact, case-sensitive match; padding is rejected, never trimmed."""
    if not isinstance(value, str):
        raise CrmError(f"{label} must be provided as a string.")
    allowed = [m.value for m in enum]
    if value in allowed:
        return value
    if value != value.strip() and value.strip() in allowed:
        raise CrmError(f"{label} must not contain leading or trailing whitespace.")
    raise CrmError(f"{label} must be one of: {', '.join(sorted(allowed))}.")


def amount(value: Any, label: str, *, allow_zero: bool = False) -> float:
    """A positive (or non-negative) JSON number up to 10,000,000, stored as float."""
    if not is_number(value):
        raise CrmError(f"{label} must be numeric.")
    if allow_zero:
        if value < 0:
            raise CrmError(f"{label} must not be negative.")
    elif value <= 0:
        raise CrmError(f"{label} must be greater than zero.")
    if value > MAX_AMOUNT:
        raise CrmError(f"{label} must not exceed 10,000,000.")
    return float(value)


def probability(value: Any) -> int | None:
    """Whole-number percentage 1..99 (50.0 is accepted as 50)."""
    if value is None:
        return None
    if not is_number(value):
        raise CrmError("Probability must be numeric.")
    if isinstance(value, float) and not value.is_integer():
        raise CrmError("Probability must be expressed as a whole-number percentage.")
    if not 1 <= value <= 99:
        raise CrmError("Probability must be between 1 and 99.")
    return int(value)


def parse_date(value: Any) -> date | None:
    """A ``date``, or a strict ``YYYY-MM-DD`` string; None when not a valid date."""
    if isinstance(value, date):
        return value if type(value) is date else None
    if isinstance(value, str) and _DATE_RE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def date_value(value: Any, label: str) -> date | None:
    """An optional strict ISO date."""
    if value is None:
        return None
    if not isinstance(value, str | date):
        raise CrmError(f"{label} must be provided as a date or ISO-8601 string.")
    parsed = parse_date(value)
    if parsed is None:
        raise CrmError(f"{label} must be a valid ISO-8601 date (YYYY-MM-DD).")
    return parsed


def close_date(value: Any, today: date) -> date | None:
    """Expected close date: strict ISO date, today or later."""
    parsed = date_value(value, "Close date")
    if parsed is not None and parsed < today:
        raise CrmError("Close date must be today or in the future.")
    return parsed


def email(value: Any, label: str, entity: str, *, required: bool) -> str | None:
    """An email address (trimmed, ASCII, ≤ 254 characters)."""
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise CrmError(f"{label} must be provided as a string.")
    stripped = value.strip()
    if not stripped:
        if required:
            raise CrmError(f"{label} must not be blank or whitespace.")
        return None
    if len(stripped) > 254 or not _EMAIL_RE.fullmatch(stripped):
        raise CrmError(f"{entity} email must be a valid email address.")
    return stripped


def url(value: Any, label: str) -> str | None:
    """An optional absolute http(s) URL."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise CrmError(f"{label} must be provided as a string.")
    stripped = value.strip()
    if not stripped:
        return None
    # urlsplit lower-cases the scheme and drops leading control characters, so check the
    # stored text itself starts with the scheme (as the PostgreSQL CHECK does).
    ok = storable(stripped) and stripped.startswith(("http://", "https://"))
    ok = ok and not any(c.isspace() for c in stripped)
    if ok:
        try:
            parts = urlsplit(stripped)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            ok = False
    if not ok or len(stripped) > 2048:
        raise CrmError(f"{label} must be an absolute http(s) URL.")
    return stripped


def file_name(value: Any) -> str:
    """A document file name: safe characters and an allowed extension."""
    label = "Document file name"
    if not isinstance(value, str):
        raise CrmError(f"{label} must be provided as a string.")
    if not value.strip():
        raise CrmError(f"{label} must not be blank or whitespace.")
    if not _FILE_NAME_RE.fullmatch(value) or len(value) > 255:
        raise CrmError(
            f"{label} may only include letters, numbers, dots, underscores, and hyphens."
        )
    if "." not in value:
        raise CrmError(f"{label} must include an extension.")
    ext = value.rsplit(".", 1)[1]
    if ext.lower() not in ALLOWED_EXTENSIONS:
        raise CrmError(
            f"Document file extension '.{ext}' is not supported "
            f"(allowed: {', '.join(ALLOWED_EXTENSIONS)})."
        )
    return value


VALIDATED_KINDS = frozenset(
    {
        "text",
        "email",
        "enum",
        "entity_type",
        "amount",
        "value",
        "probability",
        "close_date",
        "date",
        "url",
        "file_name",
    }
)


def field_value(
    f: Field, value: Any, entity: str, *, label: str | None = None, today: date | None = None
) -> Any:
    """Validate one value of an entity field by its kind; returns what to store.

    ``today`` turns on the close-date rule (live calls); seeded data is checked without it.
    Kinds outside :data:`VALIDATED_KINDS` (ids, timestamps) are the caller's business.
    """
    label = label or f.label
    kind = f.kind
    if kind == "text":
        return text(value, label, required=f.required)
    if kind == "email":
        return email(value, label, entity, required=f.required)
    if kind in ("enum", "entity_type"):
        assert f.enum is not None
        if value is None and not f.required:
            return None
        return enum_value(value, f.enum, label)
    if kind == "amount":
        return amount(value, label)
    if kind == "value":
        return None if value is None else amount(value, label, allow_zero=True)
    if kind == "probability":
        return probability(value)
    if kind == "close_date" and today is not None:
        return close_date(value, today)
    if kind in ("date", "close_date"):
        return date_value(value, label)
    if kind == "url":
        return url(value, label)
    if kind == "file_name":
        return file_name(value)
    raise ValueError(f"{label}: kind {kind!r} is not validated here")


def joined(items: Iterable[str]) -> str:
    return ", ".join(items)
