"""The one exception type the CRM raises.

Every rule violation — bad argument, missing record, broken business rule — is a
:class:`CrmError` carrying the spec's exact message, so agents and tests see the same
text on every store and never a pydantic, psycopg or Python ``TypeError`` message.
"""

from __future__ import annotations


class CrmError(Exception):
    """A CRM rule violation; ``message`` is what the agent is shown."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def shorten(value: object, limit: int = 200) -> str:
    """Render a caller-supplied value for an error message, bounded in length.

    Hostile inputs (megabyte strings) must not turn every error into a megabyte.
    """
    if isinstance(value, str):
        text = value
    else:
        try:
            text = repr(value)
        except ValueError:  # e.g. an int beyond Python's int-to-str digit limit
            text = f"<{type(value).__name__} too large to display>"
    return text if len(text) <= limit else text[:limit] + "…"
