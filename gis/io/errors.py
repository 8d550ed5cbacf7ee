"""Errors of the readers (plain ``ValueError`` subclasses)."""

from __future__ import annotations

from typing import Any


class ReadError(ValueError):
    """A file cannot be read as asked (unknown format, no CRS, missing column, bad rows).

    Parameters
    ----------
    message : str
        What is wrong and how to fix it.
    items : list of dict, optional
        The offending features (e.g. invalid geometries), for listing.
    """

    def __init__(self, message: str, items: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.items: list[dict[str, Any]] = list(items or [])
