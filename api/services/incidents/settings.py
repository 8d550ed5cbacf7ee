"""Tunables of incident intake (read from ``WANGGE_INCIDENTS_*`` variables)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class IncidentSettings(BaseSettings):
    """How intake treats descriptions and likely duplicates."""

    model_config = SettingsConfigDict(env_prefix="WANGGE_INCIDENTS_", extra="ignore")

    #: Longest description accepted (characters).
    description_max_chars: int = 2000
    #: A new report of the same item this close to an open case is a likely duplicate.
    duplicate_radius_m: float = 50.0
    #: ... if that open case was reported at most this long ago.
    duplicate_window_hours: float = 72.0
