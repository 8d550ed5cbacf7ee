"""THE permission table: for every route, who may call it.

Every route of the app (method + path template, as FastAPI declares it) has one
:class:`Rule` here. ``api.web.authorize`` enforces the table at the route, after
FastAPI matched it: a dependency of every API route, and a guard in front of every
mount. Routers do not repeat the checks. A route missing from the table is refused
to everyone but admins (fail closed) and fails
``tests/trust/test_permission_matrix.py``, so every new endpoint must be declared here.

Roles (``api.store.models.TOKEN_ROLES``): admin may do everything. The others:

* planner: plans and imports in its area scope;
* dispatcher: incidents, tasks and people in its area scope;
* worker: its own grid's cases and its own tasks (``--person``);
* department: its escalation queue (``--department``);
* reporter: submits reports and reads its own.

The table decides roles, rates and how a token may travel. *Which rows and things* a
caller reaches is decided by the services from the typed request
(:mod:`api.auth.policy`); a rule's ``scope`` says what they check, for the
documentation and the matrix test:

``none``
    the role is enough (lists still show only the token's area: an unnamed area is
    the token's area).
``area``
    a community or district the request names must lie in the token's area (403), and
    naming none means the token's area.
``department``
    the department the parameter ``param`` names must be the token's own (403).
``entity``
    the thing the parameter ``param`` names (an ``entity`` of :data:`ENTITIES`) must be
    related to the caller: in its area (planners, dispatchers), its person (workers),
    its department, or filed by it (reporters); otherwise 404, exactly as a thing that
    does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ADMIN = "admin"
PLANNER = "planner"
DISPATCHER = "dispatcher"
WORKER = "worker"
DEPARTMENT = "department"
REPORTER = "reporter"
#: every role that holds a token (admin is implied in every rule)
ANY_ROLE = (PLANNER, DISPATCHER, WORKER, DEPARTMENT, REPORTER)
#: staff of the city (everyone but residents who report)
STAFF = (PLANNER, DISPATCHER, WORKER, DEPARTMENT)

SCOPES = ("none", "area", "entity", "department")


@dataclass(frozen=True)
class Rule:
    """Who may call one route.

    Parameters
    ----------
    roles
        Roles allowed besides admin (admin always may). Empty with ``public``.
    public
        Anonymous callers allowed (a token, if sent, must still be valid).
    scope
        ``none``, ``area`` or ``entity`` (see the module docstring).
    entity, param
        For ``entity`` scope: which entity and the path parameter naming it.
    rate
        A rate-limit bucket applied per token (per client address when anonymous):
        ``"intake"`` for reports, ``"public"`` for anonymous reads of public data
        (callers with a token are not counted there).
    api_key
        A field that may carry the token instead of the ``Authorization`` header:
        Open311's ``api_key`` form field, or ``access_token`` for map pages, tiles and
        OGC. In the query string only tokens created with ``--allow-query-token``
        (QGIS) are accepted.
    note
        What the route is, for ``docs/security.md``.
    """

    roles: tuple[str, ...] = ()
    public: bool = False
    scope: str = "none"
    entity: str | None = None
    param: str | None = None
    rate: str | None = None
    api_key: str | None = None
    note: str = ""
    allowed: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Check the rule and derive the roles allowed (admin always)."""
        if self.scope not in SCOPES:
            raise ValueError(f"unknown scope {self.scope!r}")
        if self.scope == "entity" and (self.entity not in ENTITIES or not self.param):
            raise ValueError(f"entity scope needs a known entity and a param: {self!r}")
        if self.scope == "department" and not self.param:
            raise ValueError(f"department scope needs a param: {self!r}")
        object.__setattr__(self, "allowed", frozenset((ADMIN, *self.roles)))

    def allows_role(self, role: str | None) -> bool:
        """Tell whether a caller of this role (None: anonymous) may call the route."""
        return self.public or (role is not None and role in self.allowed)


def public(note: str = "") -> Rule:
    """Make a rule for a route anyone may call."""
    return Rule(public=True, note=note)


def admin_only(note: str = "") -> Rule:
    """Make a rule for a route only admins may call."""
    return Rule(note=note)


#: The kinds of things a route may name (``entity`` scope).
ENTITIES = frozenset({"incident", "plan", "person", "grid", "grid_code", "task"})


def r(*roles: str, **kw: object) -> Rule:
    """Make a rule for a route these roles (and admins) may call."""
    return Rule(roles=tuple(roles), **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the table
#: (METHOD, path template) → Rule.  Mounted sub-apps (static files) are keyed
#: ("GET", "<mount path>") and cover everything below that path.
PERMISSIONS: dict[tuple[str, str], Rule] = {
    # ---- public
    ("GET", "/health"): public("liveness (versions for admins); 503 when the store is down"),
    ("GET", "/"): public("the start page: what is served where"),
    ("GET", "/openapi.json"): public("the OpenAPI schema"),
    ("GET", "/docs"): public("Swagger UI"),
    # ---- areas (foundation)
    ("GET", "/api/v1/communities"): r(*ANY_ROLE, scope="area", note="community boundaries"),
    ("GET", "/api/v1/grids"): r(*ANY_ROLE, scope="area", note="grids of the active plans"),
    ("GET", "/api/v1/grids/locate"): r(*ANY_ROLE, note="grid, worker and branch at a point"),
    ("GET", "/api/v1/party/tree"): r(*ANY_ROLE, scope="area", note="party tiers of a community"),
    ("GET", "/api/v1/party/locate"): r(*ANY_ROLE, note="party tiers responsible for a place"),
    # ---- incidents (intake → close)
    ("POST", "/api/v1/incidents"): r(
        REPORTER, DISPATCHER, WORKER, scope="area", rate="intake", note="report a matter"
    ),
    ("GET", "/api/v1/incidents"): r(
        DISPATCHER,
        WORKER,
        DEPARTMENT,
        REPORTER,
        scope="area",
        note="incidents the token may see (rows filtered by the router)",
    ),
    ("GET", "/api/v1/incidents/{incident_id}"): r(
        DISPATCHER,
        WORKER,
        DEPARTMENT,
        REPORTER,
        scope="entity",
        entity="incident",
        param="incident_id",
        note="one incident with its log",
    ),
    ("POST", "/api/v1/incidents/{incident_id}/transitions"): r(
        DISPATCHER,
        WORKER,
        DEPARTMENT,
        REPORTER,
        scope="entity",
        entity="incident",
        param="incident_id",
        note="move the case (the router checks the action per role)",
    ),
    ("POST", "/api/v1/incidents/{incident_id}/reassign"): r(
        DISPATCHER,
        scope="entity",
        entity="incident",
        param="incident_id",
        note="move the case to another grid",
    ),
    ("POST", "/api/v1/incidents/{incident_id}/merge"): r(
        DISPATCHER, scope="entity", entity="incident", param="incident_id", note="merge a duplicate"
    ),
    # ---- desk claims (issue 11, dispatcher desk): who handles a case, until when
    ("GET", "/api/v1/incidents/{incident_id}/claim"): r(
        DISPATCHER, scope="entity", entity="incident", param="incident_id", note="the desk claim on a case"
    ),
    ("POST", "/api/v1/incidents/{incident_id}/claim"): r(
        DISPATCHER,
        scope="entity",
        entity="incident",
        param="incident_id",
        note="claim a case for N minutes (409 when another dispatcher holds it)",
    ),
    ("DELETE", "/api/v1/incidents/{incident_id}/claim"): r(
        DISPATCHER,
        scope="entity",
        entity="incident",
        param="incident_id",
        note="release a claim (its holder, or an admin)",
    ),
    ("POST", "/api/v1/incidents/{incident_id}/rating"): r(
        REPORTER,
        DISPATCHER,
        scope="entity",
        entity="incident",
        param="incident_id",
        note="rate a resolved case (好差评)",
    ),
    # ---- Open311 publication policy (issue 14 item 2): staff publish or hide one case
    ("PUT", "/api/v1/incidents/{incident_id}/publication"): r(
        DISPATCHER,
        scope="entity",
        entity="incident",
        param="incident_id",
        note="publish or hide a case on Open311 (audited)",
    ),
    ("GET", "/api/v1/metrics"): r(
        PLANNER, DISPATCHER, DEPARTMENT, scope="area", note="service figures (aggregates)"
    ),
    ("GET", "/api/v1/departments"): r(*ANY_ROLE, note="departments and their time limits"),
    ("GET", "/api/v1/departments/{code}/queue"): r(
        DEPARTMENT, DISPATCHER, scope="department", param="code", note="a department's escalation queue"
    ),
    # ---- Open311 GeoReport v2 (public reads masked; posting needs a token as api_key)
    ("GET", "/open311/v2/discovery.{fmt}"): public("GeoReport discovery"),
    ("GET", "/open311/v2/services.{fmt}"): Rule(
        public=True, rate="public", note="the public service catalogue"
    ),
    ("GET", "/open311/v2/services/{service_code}.{fmt}"): Rule(
        public=True, rate="public", note="a service definition"
    ),
    ("GET", "/open311/v2/requests.{fmt}"): Rule(
        public=True,
        rate="public",
        note="published requests (place rounded to 100 m, text masked); a token's own cases whole",
    ),
    ("GET", "/open311/v2/requests/{service_request_id}.{fmt}"): Rule(
        public=True,
        rate="public",
        note="one request if published or the token's own (else 404)",
    ),
    ("POST", "/open311/v2/requests.{fmt}"): r(
        REPORTER,
        DISPATCHER,
        rate="intake",
        api_key="api_key",
        note="post a request (token as Bearer or api_key)",
    ),
    # ---- dispatch: people, tasks, points
    ("GET", "/api/v1/dispatch/nearest"): r(
        DISPATCHER, WORKER, PLANNER, DEPARTMENT, scope="area", note="nearest available people to a point"
    ),
    ("PUT", "/api/v1/people/positions"): r(
        DISPATCHER, WORKER, note="a batch of position pings (router checks each person)"
    ),
    ("PUT", "/api/v1/people/{person_id}/position"): r(
        DISPATCHER, WORKER, scope="entity", entity="person", param="person_id", note="report a position"
    ),
    ("PUT", "/api/v1/people/{person_id}/availability"): r(
        DISPATCHER,
        WORKER,
        scope="entity",
        entity="person",
        param="person_id",
        note="on duty, capacity, shift end",
    ),
    ("GET", "/api/v1/people/{person_id}"): r(
        DISPATCHER,
        WORKER,
        PLANNER,
        scope="entity",
        entity="person",
        param="person_id",
        note="a person's availability and load",
    ),
    ("GET", "/api/v1/people/{person_id}/positions"): r(
        DISPATCHER, WORKER, scope="entity", entity="person", param="person_id", note="position history"
    ),
    ("GET", "/api/v1/people/{person_id}/points"): r(
        DISPATCHER,
        WORKER,
        scope="entity",
        entity="person",
        param="person_id",
        note="points balance and ledger",
    ),
    ("GET", "/api/v1/points/rewards"): r(*ANY_ROLE, note="rewards catalogue"),
    ("POST", "/api/v1/points/redeem"): r(
        DISPATCHER,
        WORKER,
        scope="entity",
        entity="person",
        param="person_id",
        note="spend points (body person_id must be the caller's own for workers)",
    ),
    ("POST", "/api/v1/tasks"): r(DISPATCHER, scope="area", note="create and offer a task"),
    ("POST", "/api/v1/tasks/expire-offers"): r(DISPATCHER, note="move lapsed offers on"),
    ("GET", "/api/v1/tasks"): r(
        DISPATCHER, WORKER, PLANNER, scope="area", note="tasks (rows filtered by the router)"
    ),
    ("GET", "/api/v1/tasks/{task_id}"): r(
        DISPATCHER,
        WORKER,
        PLANNER,
        scope="entity",
        entity="task",
        param="task_id",
        note="a task with its offers",
    ),
    ("POST", "/api/v1/tasks/{task_id}/accept"): r(
        DISPATCHER, WORKER, scope="entity", entity="task", param="task_id", note="the offered person accepts"
    ),
    ("POST", "/api/v1/tasks/{task_id}/decline"): r(
        DISPATCHER, WORKER, scope="entity", entity="task", param="task_id", note="the offered person declines"
    ),
    ("POST", "/api/v1/tasks/{task_id}/complete"): r(
        DISPATCHER, WORKER, scope="entity", entity="task", param="task_id", note="the assignee completes"
    ),
    ("POST", "/api/v1/tasks/{task_id}/cancel"): r(
        DISPATCHER, scope="entity", entity="task", param="task_id", note="cancel a task"
    ),
    # ---- planning (plans, edits, publish)
    ("POST", "/api/v1/plans"): r(PLANNER, scope="area", note="redraw a community: a draft plan"),
    ("GET", "/api/v1/plans"): r(PLANNER, scope="area", note="plans in scope"),
    ("GET", "/api/v1/plans/{plan_id}"): r(
        PLANNER, scope="entity", entity="plan", param="plan_id", note="a plan with its grids"
    ),
    ("POST", "/api/v1/plans/{plan_id}/edits"): r(
        PLANNER, scope="entity", entity="plan", param="plan_id", note="edit a draft (its owner)"
    ),
    ("POST", "/api/v1/plans/{plan_id}/publish"): r(
        PLANNER, scope="entity", entity="plan", param="plan_id", note="make a draft active, or roll back"
    ),
    ("DELETE", "/api/v1/plans/{plan_id}"): r(
        PLANNER, scope="entity", entity="plan", param="plan_id", note="discard a draft (its owner)"
    ),
    ("GET", "/api/v1/plans/{plan_id}/review"): r(
        PLANNER, scope="entity", entity="plan", param="plan_id", note="a plan's review table per grid"
    ),
    ("GET", "/api/v1/plans/{plan_id}/compare/{other_id}"): r(
        PLANNER, scope="entity", entity="plan", param="plan_id", note="two plans side by side"
    ),
    ("POST", "/api/v1/plans/{plan_id}/undo"): r(
        PLANNER, scope="entity", entity="plan", param="plan_id", note="undo a draft's latest edit"
    ),
    ("GET", "/api/v1/plans/{plan_id}/publish-preview"): r(
        PLANNER, scope="entity", entity="plan", param="plan_id", note="what a publish would change"
    ),
    ("GET", "/api/v1/plans/{plan_id}/export.gpkg"): r(
        PLANNER, scope="entity", entity="plan", param="plan_id", note="a plan as a GeoPackage"
    ),
    # ---- visits
    ("GET", "/api/v1/visits/checklist"): r(*STAFF, note="the grid-visit checklist"),
    ("POST", "/api/v1/visits"): r(
        WORKER,
        DISPATCHER,
        scope="entity",
        entity="person",
        param="worker_id",
        note="record a household visit (workers: their own)",
    ),
    ("GET", "/api/v1/grids/{code}/visits-due"): r(
        DISPATCHER,
        WORKER,
        PLANNER,
        scope="entity",
        entity="grid_code",
        param="code",
        note="must-visit households overdue in a grid (workers: own grid)",
    ),
    # ---- maps (HTML pages; the console's cookie, or ?access_token= for opted-in tokens)
    ("GET", "/maps/static"): public("map static assets (scripts, styles)"),
    ("GET", "/maps/coverage"): r(*STAFF, scope="area", api_key="access_token", note="coverage map"),
    ("GET", "/maps/heatmap"): r(
        PLANNER, DISPATCHER, DEPARTMENT, scope="area", api_key="access_token", note="incident heatmap"
    ),
    ("GET", "/maps/visits"): r(
        PLANNER, DISPATCHER, WORKER, scope="area", api_key="access_token", note="buildings not visited lately"
    ),
    ("GET", "/maps/people"): r(
        DISPATCHER, PLANNER, scope="area", api_key="access_token", note="people at their last position"
    ),
    ("GET", "/maps/party"): r(*STAFF, scope="area", api_key="access_token", note="party tiers"),
    ("GET", "/maps/plan/{plan_id}"): r(
        PLANNER,
        scope="entity",
        entity="plan",
        param="plan_id",
        api_key="access_token",
        note="a draft plan over the active one",
    ),
    # ---- vector tiles and OGC API Features (published views hold no personal fields)
    ("GET", "/tiles"): r(*STAFF, api_key="access_token", note="tile layers (URL templates)"),
    ("GET", "/tiles/{layer}/{z}/{x}/{y}"): r(
        *STAFF, api_key="access_token", note="a Mapbox vector tile (features of the token's area)"
    ),
    ("GET", "/ogc"): r(
        *STAFF,
        api_key="access_token",
        note="OGC API Features (mount: every path below /ogc; features of the token's area)",
    ),
    # ---- trust
    ("GET", "/api/v1/audit"): admin_only("the append-only audit log"),
    # ---- web console (HTML pages; the session cookie or a bearer token; see docs/console.md)
    ("GET", "/console"): public("console entry: the role's home screen, or sign-in"),
    ("GET", "/console/login"): public("console sign-in page"),
    ("POST", "/console/login"): public("console sign-in: token (form) → session cookie"),
    ("POST", "/console/logout"): r(*ANY_ROLE, note="end the console session"),
    ("POST", "/console/lang"): r(*ANY_ROLE, note="switch the session's language"),
    ("GET", "/console/static"): public("console scripts, styles and vendored assets (mount)"),
    ("GET", "/console/events"): r(*ANY_ROLE, note="the page's live stream (SSE), rows filtered by scope"),
    ("GET", "/console/map"): r(*STAFF, note="base map of the token's area, live"),
    ("GET", "/console/intake"): r(DISPATCHER, WORKER, REPORTER, note="window intake (受理)"),
    ("GET", "/console/dispatch"): r(DISPATCHER, note="dispatcher desk (调度台)"),
    # ---- console: dispatcher desk (issue 11, screen 2); scope and claims decided by the services
    ("GET", "/console/dispatch/cases/{incident_id}"): r(
        DISPATCHER,
        scope="entity",
        entity="incident",
        param="incident_id",
        note="desk: one case and who is nearest",
    ),
    ("GET", "/console/dispatch/people"): r(DISPATCHER, note="desk: people on duty in the map's view"),
    ("POST", "/console/dispatch/cases/{incident_id}/claim"): r(
        DISPATCHER, scope="entity", entity="incident", param="incident_id", note="desk: claim a case"
    ),
    ("POST", "/console/dispatch/cases/{incident_id}/release"): r(
        DISPATCHER, scope="entity", entity="incident", param="incident_id", note="desk: release a claim"
    ),
    ("POST", "/console/dispatch/cases/{incident_id}/assign"): r(
        DISPATCHER,
        scope="entity",
        entity="incident",
        param="incident_id",
        note="desk: assign from the nearest",
    ),
    ("POST", "/console/dispatch/cases/{incident_id}/task"): r(
        DISPATCHER,
        scope="entity",
        entity="incident",
        param="incident_id",
        note="desk: offer a micro-grid task",
    ),
    ("POST", "/console/dispatch/cases/{incident_id}/reassign"): r(
        DISPATCHER, scope="entity", entity="incident", param="incident_id", note="desk: move to another grid"
    ),
    ("POST", "/console/dispatch/cases/{incident_id}/escalate"): r(
        DISPATCHER, scope="entity", entity="incident", param="incident_id", note="desk: escalate (吹哨)"
    ),
    ("POST", "/console/dispatch/cases/{incident_id}/merge"): r(
        DISPATCHER, scope="entity", entity="incident", param="incident_id", note="desk: merge a duplicate"
    ),
    ("POST", "/console/dispatch/cases/{incident_id}/conclude"): r(
        DISPATCHER,
        scope="entity",
        entity="incident",
        param="incident_id",
        note="desk: verify (核查), close (结案) or reopen a case reported back",
    ),
    ("POST", "/console/dispatch/bulk"): r(DISPATCHER, note="desk: bulk assign / escalate"),
    ("GET", "/console/department"): r(DEPARTMENT, note="department queue (部门报到)"),
    ("GET", "/console/field"): r(WORKER, note="field worker's cases, tasks and visits"),
    ("GET", "/console/plans"): r(PLANNER, note="grid plans: redraw, review, publish"),
    # ---- console: department queue (部门工单; the services check the case is escalated to it)
    ("GET", "/console/department/queue"): r(DEPARTMENT, note="department queue: the list (htmx)"),
    ("GET", "/console/department/{incident_id}"): r(
        DEPARTMENT, scope="entity", entity="incident", param="incident_id", note="department queue: one case"
    ),
    ("POST", "/console/department/{incident_id}/act"): r(
        DEPARTMENT,
        scope="entity",
        entity="incident",
        param="incident_id",
        note="department queue: accept, reply, return, close with a note",
    ),
    # ---- console: field worker (网格员工作台; the services act for the token's person only)
    ("GET", "/console/field/work"): r(WORKER, note="field worker: my cases, tasks, visits due (htmx)"),
    ("POST", "/console/field/actions"): r(
        WORKER, note="field worker: one queued action, done once per idempotency key"
    ),
    ("GET", "/console/field/sw.js"): r(WORKER, note="field worker: service worker for offline reloads"),
    ("GET", "/console/dashboard"): r(PLANNER, DISPATCHER, DEPARTMENT, note="manager dashboard (驾驶舱)"),
    # ---- console: planner screen (/console/plans; the plan's scope is checked by the planning services)
    ("POST", "/console/plans/runs"): r(PLANNER, note="start a redraw in the background (idempotent key)"),
    ("GET", "/console/plans/runs/{run_id}"): r(PLANNER, note="a redraw run's progress (its starter only)"),
    ("POST", "/console/plans/runs/{run_id}/cancel"): r(PLANNER, note="cancel a redraw run (its starter)"),
    ("GET", "/console/plans/compare"): r(PLANNER, note="two plans side by side"),
    ("GET", "/console/plans/{plan_id}"): r(
        PLANNER, scope="entity", entity="plan", param="plan_id", note="review a plan over the active plan"
    ),
    ("GET", "/console/plans/{plan_id}/grids.json"): r(
        PLANNER, scope="entity", entity="plan", param="plan_id", note="a plan's grids for the map"
    ),
    ("POST", "/console/plans/{plan_id}/edits"): r(
        PLANNER, scope="entity", entity="plan", param="plan_id", note="edit a draft (its owner)"
    ),
    ("POST", "/console/plans/{plan_id}/undo"): r(
        PLANNER, scope="entity", entity="plan", param="plan_id", note="undo a draft's latest edit"
    ),
    ("GET", "/console/plans/{plan_id}/publish-preview"): r(
        PLANNER, scope="entity", entity="plan", param="plan_id", note="the publish confirmation"
    ),
    ("POST", "/console/plans/{plan_id}/publish"): r(
        PLANNER, scope="entity", entity="plan", param="plan_id", note="publish a draft, or roll back"
    ),
    # ---- manager dashboard (issue 12): the KPI readers of /api/v1/metrics, scoped as there
    ("GET", "/console/dashboard/ranking.csv"): r(
        PLANNER, DISPATCHER, DEPARTMENT, note="dashboard ranking as CSV"
    ),
    ("GET", "/console/dashboard/trends.csv"): r(
        PLANNER, DISPATCHER, DEPARTMENT, note="dashboard trends as CSV"
    ),
    ("GET", "/console/dashboard/tiles"): r(
        PLANNER, DISPATCHER, DEPARTMENT, note="dashboard KPI tiles alone (live refresh), partial"
    ),
    ("GET", "/console/dashboard/coverage"): r(
        PLANNER,
        DISPATCHER,
        DEPARTMENT,
        note="dashboard map layers: grid figures, people on duty, party tiers",
    ),
    ("GET", "/console/dashboard/gaps"): r(
        PLANNER, DISPATCHER, DEPARTMENT, note="dashboard: buildings not visited (must-visit first), partial"
    ),
    ("GET", "/console/dashboard/gaps.csv"): r(
        PLANNER, DISPATCHER, DEPARTMENT, note="dashboard: buildings not visited as CSV"
    ),
    ("GET", "/console/admin"): admin_only("console administration"),
    ("GET", "/console/admin/tokens"): admin_only("tokens: list"),
    ("POST", "/console/admin/tokens"): admin_only("tokens: issue (secret shown once)"),
    ("POST", "/console/admin/tokens/revoke"): admin_only("tokens: revoke (sessions end with it)"),
    # ---- console: window intake (窗口受理, /console/intake; services: api.services.incidents.window)
    ("GET", "/console/intake/catalogue"): r(
        DISPATCHER, WORKER, REPORTER, note="window: catalogue search (words or code)"
    ),
    ("GET", "/console/intake/places"): r(
        DISPATCHER, WORKER, REPORTER, note="window: the caller's address (buildings in the token's area)"
    ),
    ("GET", "/console/intake/place"): r(
        DISPATCHER, WORKER, REPORTER, note="window: grid, worker, branch, time limit, cases nearby"
    ),
    ("GET", "/console/intake/recent"): r(
        DISPATCHER, WORKER, REPORTER, note="window: the cases this token filed, newest first (live)"
    ),
    ("POST", "/console/intake"): r(
        DISPATCHER, WORKER, REPORTER, rate="intake", note="window: file the matter (idempotent)"
    ),
    ("POST", "/console/intake/{incident_id}/complete"): r(
        DISPATCHER,
        WORKER,
        scope="entity",
        entity="incident",
        param="incident_id",
        note="window: an on-the-spot item completed at the window (即办)",
    ),
    # ---- resident report (/report, public, no account; services: api.services.incidents.tickets)
    ("GET", "/report"): Rule(public=True, rate="public", note="resident report form"),
    ("POST", "/report"): Rule(public=True, rate="intake", note="resident report: take it, answer its ticket"),
    ("GET", "/report/t/{secret}"): Rule(
        public=True, rate="public", note="a resident's own report by its ticket secret (no listing)"
    ),
    ("POST", "/report/t/{secret}/rating"): Rule(
        public=True, rate="intake", note="the resident rates the result once (好差评)"
    ),
    ("GET", "/report/t/{secret}/photo"): Rule(
        public=True, rate="public", note="the photo of a resident's report (through its ticket)"
    ),
    ("GET", "/report/where"): Rule(
        public=True, rate="public", note="community and grid of a point (stated system; no people)"
    ),
    ("GET", "/report/area.geojson"): Rule(
        public=True, rate="public", note="community outlines for the report page's map"
    ),
}


def rule_for(method: str, path: str) -> Rule | None:
    """Return the rule of a route (HEAD is looked up as GET); None when undeclared."""
    method = "GET" if method == "HEAD" else method
    return PERMISSIONS.get((method, path))


def role_matrix() -> list[dict[str, object]]:
    """List the table as rows (for ``docs/security.md`` and the matrix test)."""
    rows = []
    for (method, path), rule in sorted(PERMISSIONS.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        rows.append(
            {
                "method": method,
                "path": path,
                "public": rule.public,
                "roles": sorted(rule.allowed) if not rule.public else ["anonymous", *sorted(rule.allowed)],
                "scope": rule.scope if rule.scope != "entity" else f"entity:{rule.entity}({rule.param})",
                "rate": rule.rate,
                "note": rule.note,
            }
        )
    return rows
