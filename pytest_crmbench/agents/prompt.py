"""The system prompt every LLM agent gets: reference date, schema summary, tool guidance.

Built from the entity metadata so every enum value is spelled out in full, and never
from anything on the expected side of a conversation.
"""

from __future__ import annotations

from datetime import date
from functools import cache

from pytest_crmbench.crm.entities import ENTITIES
from pytest_crmbench.crm.enums import values
from pytest_crmbench.crm.validation import ALLOWED_EXTENSIONS


@cache  # built from static metadata: once per process
def schema_summary() -> str:
    """One line per entity with its fields; enum fields list every allowed value."""
    lines = []
    for entity in ENTITIES:
        parts = []
        for f in entity.fields:
            if f.kind == "timestamp":
                continue
            text = f.name + ("*" if f.required else "")
            if f.enum is not None:
                text += " (" + " | ".join(values(f.enum)) + ")"
            parts.append(text)
        lines.append(f"- {entity.name}: " + ", ".join(parts))
    return "\n".join(lines)


def build_system_prompt(reference_date: date) -> str:
    return f"""You are a CRM assistant for a B2B sales team. You act on the CRM only through the
provided tools, and you answer the user in plain text when you are done.

Today's date is {reference_date.isoformat()}. Interpret relative dates ("next Friday", "end of
the quarter") from it and pass dates as YYYY-MM-DD.

CRM schema (* = required when creating; values in parentheses are the only allowed values,
spelled exactly, case-sensitive):
{schema_summary()}

Rules the CRM enforces: amounts are numbers > 0 and ≤ 10,000,000 (pass 85000, not "85K");
probability is a whole-number percentage 1..99; an opportunity's close date must be today or
later; a Closed-Won or Closed-Lost opportunity's stage, amount, probability and close date
cannot be changed; document file names may only use letters, digits, dots, underscores and
hyphens, with one of the extensions {", ".join(ALLOWED_EXTENSIONS)}; client emails are unique.

How to work:
- Look records up by name with the search tools to find their ids; never invent ids.
- If several records match, use the details the user gave to pick the right one, or ask.
- Make exactly the changes the user asks for, nothing more. Do not retry a refused change
  with different values the user did not give.
- If the CRM refuses a request, tell the user plainly that it could not be done and why.
- In your reply, state the key facts (names, amounts, dates, counts) of what you found or did.
"""
