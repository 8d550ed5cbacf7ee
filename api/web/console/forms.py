"""Reading the console's form fields: an empty field is no value, a number field says so."""

from __future__ import annotations

from api.errors import InvalidInput


def blank(value: str | None) -> str | None:
    """Return the field's text stripped, or None when it is empty."""
    value = (value or "").strip()
    return value or None


def number(value: str | None, field: str) -> float | None:
    """Return the field as a number (None when empty); 422 naming ``field`` when it is not one."""
    text = blank(value)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(f"{field} must be a number", loc=["body", field]) from None
