"""``GET /console/events``: the page's one live stream (Server-Sent Events).

``topics`` names what the page shows (``incidents``, ``tasks``, ``people``, comma
separated); ``community`` / ``district`` narrow the area inside the token's own (an
unnamed area is the token's area). Events: ``hello`` (first), ``incident`` / ``task``
/ ``person`` with ``{"op": "INSERT"|"UPDATE", "rows": [...]}``, ``bulk`` (many rows of a
community changed: reload) and ``reset`` (changes may have been missed: reload).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.auth.policy import Area, area_for
from api.auth.principal import Principal
from api.errors import Forbidden, InvalidInput
from api.services.incidents import window as intake_window
from api.web.console.live import KIND_ROLES, TOPICS, Hub, asyncpg_dsn
from api.web.deps import EngineDep, PrincipalDep

router = APIRouter(include_in_schema=False)
#: the browser waits this long before reconnecting a dropped stream
RETRY_MS = 3000


def hub_of(request: Request) -> Hub:
    """Return the process's hub (created on first use, on ``app.state.console_hub``)."""
    state = request.app.state
    hub: Hub | None = getattr(state, "console_hub", None)
    if hub is None:
        hub = Hub(asyncpg_dsn(state.engine.url))
        state.console_hub = hub
    return hub


def parse_topics(topics: str, role: str) -> frozenset[str]:
    """Parse a ``topics`` list into change kinds, checked against what the role may follow."""
    names = [t.strip() for t in topics.split(",") if t.strip()]
    unknown = [t for t in names if t not in TOPICS]
    if not names or unknown:
        raise InvalidInput(
            f"topics must be a comma-separated list of {', '.join(TOPICS)}", loc=["query", "topics"]
        )
    kinds = frozenset(TOPICS[t] for t in names)
    refused = sorted(k for k in kinds if role not in KIND_ROLES[k])
    if refused:
        raise Forbidden(f"role {role!r} may not follow {', '.join(refused)}", loc=["query", "topics"])
    return kinds


@dataclass(frozen=True)
class StreamRequest:
    """A checked stream request: who, which kinds, which area (checked before streaming)."""

    principal: Principal
    kinds: frozenset[str]
    area: Area
    #: the window staff's stream: every incident change of the window's community
    area_incidents: bool = False


async def stream_request(
    principal: PrincipalDep,
    engine: EngineDep,
    topics: Annotated[str, Query(max_length=100, description="incidents,tasks,people")],
    community: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
    district: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
) -> StreamRequest:
    """Validate the query before the stream starts (errors are a 4xx, not a broken stream).

    A worker token at a window (bound to a ``window_worker``) follows the incidents of the
    window's community, as the intake page's nearby and recent lists show them.
    """
    kinds = parse_topics(topics, principal.role)
    area = area_for(principal, community, district)
    window = None
    if "incident" in kinds and principal.role == "worker":
        async with engine.connect() as conn:  # not a ConnDep: the stream must not hold a connection
            window = await intake_window.window_community(conn, principal)
    if window is not None and area.covers(window):
        return StreamRequest(principal, kinds, Area(community=window), area_incidents=True)
    return StreamRequest(principal, kinds, area)


@router.get("/console/events", response_class=EventSourceResponse)
async def events(
    request: Request, asked: Annotated[StreamRequest, Depends(stream_request)]
) -> AsyncIterator[ServerSentEvent]:
    """Stream the changes this viewer may see until the page closes."""
    hub = hub_of(request)
    sub = await hub.subscribe(asked.principal, asked.kinds, asked.area, area_incidents=asked.area_incidents)
    try:
        listening = hub.listener is not None and hub.listener.listening
        yield ServerSentEvent(
            event="hello", data={"topics": sorted(asked.kinds), "listening": listening}, retry=RETRY_MS
        )
        async for event in hub.stream(sub):
            yield ServerSentEvent(event=event.name, data=event.data, id=hub.next_id())
    finally:
        hub.unsubscribe(sub)
