"""Configurable values of dispatch (``WANGGE_DISPATCH_*`` environment variables)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import Request
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DispatchSettings(BaseSettings):
    """How positions, offers, proof of presence and walking distances behave."""

    model_config = SettingsConfigDict(env_prefix="WANGGE_DISPATCH_", extra="ignore")

    #: A position older than this does not count as "here" (seconds).
    stale_position_s: int = Field(default=900, ge=1)
    #: Position history older than this is deleted (days).
    history_retention_days: int = Field(default=30, ge=1)
    #: A ping stamped this far in the future is refused (clock skew allowance, seconds).
    future_tolerance_s: int = Field(default=120, ge=0)
    #: A position farther than this from the city's bounding box is refused (metres).
    city_margin_m: float = Field(default=30_000.0, gt=0)
    #: Pings accepted in one batch request.
    max_batch: int = Field(default=5_000, ge=1)
    #: How long a task offer waits for an answer before it moves on (seconds).
    offer_window_s: int = Field(default=300, ge=1)
    #: A visit or completion farther than this from the place is refused (metres).
    proof_radius_m: float = Field(default=150.0, gt=0)
    #: Largest k for nearest queries.
    max_k: int = Field(default=100, ge=1)
    #: Walking speed for walk times (metres per second).
    walk_speed_mps: float = Field(default=1.3, gt=0)
    #: Walking mode re-ranks this many straight-line candidates per requested person (at least 20).
    walk_candidates_factor: int = Field(default=4, ge=1)
    #: Street edges within this margin (metres) around the points are used for routing.
    walk_margin_m: float = Field(default=1_500.0, gt=0)
    #: Offers skip people farther than this (metres); beyond it the task stays open.
    max_offer_distance_m: float = Field(default=20_000.0, gt=0)


@lru_cache(maxsize=1)
def _from_env() -> DispatchSettings:
    return DispatchSettings()


def dispatch_settings(state: Any = None) -> DispatchSettings:
    """The settings on ``app.state.dispatch_settings`` if set there, else from the environment.

    Tests and benchmarks put an explicit object on the app state (e.g. a short
    offer window); the product reads the environment once.
    """
    explicit = getattr(state, "dispatch_settings", None) if state is not None else None
    if isinstance(explicit, DispatchSettings):
        return explicit
    return _from_env()


async def get_dispatch_settings(request: Request) -> DispatchSettings:
    """FastAPI dependency: the dispatch settings of the running app."""
    return dispatch_settings(request.app.state)
