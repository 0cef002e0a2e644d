"""THE route table of the Kestra-compatible REST API, as data, and the router that matches requests to it.

Every server mounts this one table (the standalone server, the Jupyter extension): a `Route` names the
HTTP method, the path as Kestra writes it (`/api/v1/{tenant}/executions/{executionId}`), the
`api.service.ApiService` method that serves it, its query parameters, what body it consumes, what it
produces and its success status. The handlers, the OpenAPI document and the tests are all derived from it.

Every `/api/v1/{tenant}/…` route is also served tenant-less (`/api/v1/…`), as Kestra 1.x does for OSS.
Matching follows Micronaut's rule: among the routes of the request's method whose path matches, the most
specific wins (a literal segment beats a variable, leftmost first), so `POST /executions/{id}/restart`
beats `POST /executions/{namespace}/{id}`.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

TENANT = "{tenant}"
API = "/api/v1/" + TENANT

# What a body is turned into before the service sees it (see handlers.ApiHandler._body).
MULTIPART = "multipart"      # api.service.Form (fields and uploaded files); an empty body is an empty form
FLOW_SOURCE = "flow-source"  # api.service.Body (media type + text): YAML, or a deprecated JSON Flow
JSON = "json"                # the parsed JSON value
TEXT = "text"                # the decoded text

YAML_TYPES = ("application/x-yaml", "application/yaml", "text/yaml", "text/x-yaml")


@dataclass(frozen=True, slots=True)
class Param:
    """A query parameter: its wire name, type (for parsing and OpenAPI) and the service keyword."""

    name: str
    type: str = "string"        # string | integer | boolean | duration | datetime | filters
    required: bool = False
    default: Any = None
    multi: bool = False         # repeatable (`labels=a:b&labels=c:d`, `sort=…`)
    py: str | None = None       # keyword of the service call; snake_case of `name` by default
    description: str = ""

    @property
    def keyword(self) -> str:
        """The keyword argument this parameter is passed as."""
        return self.py or snake(self.name)


@dataclass(frozen=True, slots=True)
class Route:
    """One operation of the API."""

    method: str
    path: str                   # Kestra's path, `{tenant}` included when the route lives under a tenant
    operation: str              # the ApiService method
    summary: str
    tag: str
    status: int = 200           # success status
    produces: str = "json"      # json | text | sse | none | file (a StoredFile streamed as octets)
    body: str | None = None     # MULTIPART | FLOW_SOURCE | JSON | TEXT
    consumes: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    headers: tuple[str, ...] = ()   # request headers passed to the service (lower-cased keyword)
    auth: bool = True
    errors: tuple[int, ...] = ()    # documented error statuses besides 400/401/422
    requires: str | None = None     # an Engine method the route needs; the route exists only if it does
    segments: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(s for s in self.path.split("/") if s))

    @property
    def variables(self) -> tuple[str, ...]:
        """The path variables, in order."""
        return tuple(s[1:-1] for s in self.segments if _is_var(s))

    def tenant_less(self) -> Route | None:
        """The `/api/v1/…` alias of a tenant route (None for routes outside a tenant)."""
        if TENANT not in self.segments:
            return None
        return Route(self.method, self.path.replace("/" + TENANT, "", 1), self.operation, self.summary, self.tag,
                     self.status, self.produces, self.body, self.consumes, self.params, self.headers,
                     self.auth, self.errors, self.requires)


def snake(name: str) -> str:
    """`executionId` -> `execution_id`, `isOnKillCascade` -> `is_on_kill_cascade`."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _is_var(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


# ------------------------------------------------------------------------------------------ parameters

WAIT = Param("wait", "boolean", default=False, description="Wait until the execution is finished")
TIMEOUT = Param("timeout", "duration", description=(
    "kestra_nb extension: with wait, answer with the execution as it is once this ISO duration has passed"))
LABELS = Param("labels", multi=True, description="Labels as `key:value`")
REVISION = Param("revision", "integer", description="The flow revision (default: the latest)")
SCHEDULE = Param("scheduleDate", "datetime", description="Start the execution at this date")
KIND = Param("kind", description="NORMAL, TEST or PLAYGROUND")
PAGE = Param("page", "integer", default=1)
SIZE = Param("size", "integer", default=10)
SORT = Param("sort", multi=True, description="`field:asc` or `field:desc`")
FILE_PATH = Param("path", required=True, description="The file's internal storage URI (`kestra:///…`)")
FILTERS = Param("filters", "filters", description="`filters[field][OPERATION]=value` (Kestra 1.x)")
MIN_LEVEL = Param("minLevel", description="ERROR, WARN, INFO, DEBUG or TRACE")
LOG_FILTERS = (MIN_LEVEL, Param("taskRunId"), Param("taskId"), Param("attempt", "integer"))
EXECUTION_SEARCH = (
    PAGE, SIZE, SORT, FILTERS, Param("q"), Param("scope", multi=True), Param("namespace"), Param("flowId"),
    Param("startDate", "datetime"), Param("endDate", "datetime"), Param("timeRange", "duration"),
    Param("state", multi=True), Param("labels", multi=True), Param("triggerExecutionId"), Param("childFilter"),
)
FLOW_SEARCH = (PAGE, SIZE, SORT, FILTERS, Param("q"), Param("scope", multi=True), Param("namespace"),
               Param("labels", multi=True))

_E = API + "/executions"
_F = API + "/flows"
_L = API + "/logs"
_KV = API + "/namespaces/{namespace}/kv"
_X = _E + "/{executionId}"
_NSF = API + "/namespaces/{namespace}/files"
_FILES = "Files"
NS_PATH = Param("path", description="The namespace file's path (`/scripts/etl.py`)")
NS_PATH_REQUIRED = Param("path", required=True, description="The namespace file's path (`/scripts/etl.py`)")
_FLOW = "Flows"
_EXEC = "Executions"


def _action(path: str, operation: str, summary: str, v2: dict[str, Any] | None = None,
            **kw: Any) -> tuple[Route, Route]:
    """A per-execution action in both generations: 1.x `/{id}/<action>` and 2.0 `/{id}/actions/<action>`
    (`v2` overrides what differs in 2.0: the status, the body it answers with, the operation)."""
    method = kw.pop("method", "POST")
    later = {**kw, **(v2 or {})}
    return (Route(method, _X + "/" + path, operation, summary, _EXEC, **kw),
            Route(method, _X + "/actions/" + path, later.pop("operation", operation),
                  summary + " (Kestra 2.0 form)", _EXEC, **later))


ROUTES: tuple[Route, ...] = (
    # ---------------------------------------------------------------------------------------- misc
    Route("GET", "/ping", "ping", "Liveness check", "Misc", produces="text", auth=False),
    Route("GET", "/api/v1/openapi.json", "openapi", "This OpenAPI document", "Misc"),

    # ---------------------------------------------------------------------------------- executions
    Route("POST", _E + "/{namespace}/{id}", "create_execution", "Create an execution of a flow", _EXEC,
          body=MULTIPART, consumes=("multipart/form-data",),
          params=(WAIT, LABELS, REVISION, SCHEDULE, KIND, TIMEOUT), errors=(404, 409)),
    Route("POST", _E + "/trigger/{namespace}/{id}", "create_execution",
          "Create an execution of a flow (deprecated path)", _EXEC, body=MULTIPART,
          consumes=("multipart/form-data",), params=(WAIT, LABELS, REVISION, KIND, TIMEOUT), errors=(404, 409)),
    Route("POST", _E + "/{namespace}/{id}/validate", "validate_inputs",
          "Validate the inputs of an execution without creating it", _EXEC, body=MULTIPART,
          consumes=("multipart/form-data",), params=(LABELS, REVISION), errors=(404,)),
    Route("GET", _E + "/search", "search_executions", "Search executions", _EXEC, params=EXECUTION_SEARCH),
    Route("GET", _E, "list_flow_executions", "The executions of a flow, paged", _EXEC,
          params=(Param("namespace", required=True), Param("flowId", required=True), PAGE, SIZE)),
    Route("POST", _E + "/latest", "latest_executions", "The latest execution of each given flow", _EXEC,
          body=JSON, consumes=("application/json",)),
    Route("GET", _X, "get_execution", "Get an execution", _EXEC, errors=(404,)),
    Route("DELETE", _X, "delete_execution", "Delete an execution (and its logs)", _EXEC, status=204,
          produces="none", params=(Param("deleteLogs", "boolean", default=True),
                                   Param("deleteMetrics", "boolean", default=True),
                                   Param("deleteStorage", "boolean", default=True)), errors=(404,)),
    Route("GET", _X + "/follow", "follow_execution", "Follow an execution (server-sent events)", _EXEC,
          produces="sse", errors=(404,)),
    *_action("kill", "kill_execution", "Kill an execution", method="DELETE", status=202, produces="none",
             params=(Param("isOnKillCascade", "boolean", default=True),), errors=(404, 409),
             v2={"status": 200, "produces": "json", "operation": "kill_execution_v2"}),
    *_action("labels", "set_labels", "Replace the labels of a terminated execution", body=JSON,
             consumes=("application/json",), errors=(404,)),
    *_action("change-status", "change_status", "Change the state of a terminated execution",
             params=(Param("status", required=True),), errors=(404,)),
    *_action("restart", "restart_execution", "Restart a terminated or paused execution",
             params=(REVISION,), errors=(404, 409), requires="restart_async"),
    *_action("replay", "replay_execution", "Replay an execution as a new one",
             params=(Param("taskRunId"), REVISION), errors=(404, 409), requires="replay_async"),
    *_action("replay-with-inputs", "replay_execution", "Replay an execution with other inputs",
             body=MULTIPART, consumes=("multipart/form-data",), params=(Param("taskRunId"), REVISION),
             errors=(404, 409), requires="replay_async"),
    *_action("resume", "resume_execution", "Resume a paused execution", body=MULTIPART,
             consumes=("multipart/form-data",), status=204, produces="none", errors=(404, 409),
             requires="resume_async", v2={"status": 200, "produces": "json"}),
    *_action("pause", "pause_execution", "Pause a running execution", status=204, produces="none",
             errors=(404, 409), requires="pause_async", v2={"status": 200, "produces": "json"}),
    Route("GET", API + "/outputs/executions/{executionId}", "execution_outputs",
          "The flow outputs of an execution (Kestra 2.0)", "Outputs", errors=(404,)),
    Route("GET", _X + "/file", "download_file", "Download a file of an execution (a `kestra:///` URI)", _EXEC,
          produces="file", params=(FILE_PATH,), errors=(302, 404)),
    Route("GET", _X + "/file/metas", "file_metas", "The size of a file of an execution", _EXEC,
          params=(FILE_PATH,), errors=(302, 404)),
    Route("GET", API + "/metrics/{executionId}", "search_metrics", "The metrics of an execution, paged",
          "Metrics", params=(PAGE, SIZE, SORT, Param("taskRunId"), Param("taskId"))),

    # ---------------------------------------------------------------------------------------- logs
    Route("GET", _L + "/{executionId}", "list_logs", "The logs of an execution", "Logs", params=LOG_FILTERS),
    Route("GET", _L + "/{executionId}/download", "download_logs", "The logs of an execution as text", "Logs",
          produces="text", params=LOG_FILTERS),
    Route("GET", _L + "/{executionId}/follow", "follow_logs", "Follow the logs of an execution (server-sent "
          "events)", "Logs", produces="sse", params=(MIN_LEVEL,)),

    # --------------------------------------------------------------------------------------- flows
    Route("POST", _F, "create_flow", "Create a flow from its YAML source", _FLOW, body=FLOW_SOURCE,
          consumes=(*YAML_TYPES, "application/json")),
    Route("GET", _F + "/search", "search_flows", "Search flows", _FLOW, params=FLOW_SEARCH),
    Route("GET", _F + "/distinct-namespaces", "distinct_namespaces", "The namespaces that hold flows", _FLOW,
          params=(Param("q"),)),
    Route("POST", _F + "/validate", "validate_flows", "Validate flow sources (several YAML documents)", _FLOW,
          body=TEXT, consumes=(*YAML_TYPES, "text/plain")),
    Route("POST", _F + "/bulk", "bulk_update_flows", "Create or update flows of any namespaces (several YAML "
          "documents); with `delete` (the default, as Kestra), delete every other flow of the tenant", _FLOW,
          body=TEXT, consumes=YAML_TYPES, params=(Param("delete", "boolean", default=True),)),
    Route("GET", _F + "/{namespace}", "list_flows", "The flows of a namespace", _FLOW),
    Route("POST", _F + "/{namespace}", "update_namespace_flows", "Create or update the flows of a namespace "
          "(several YAML documents); with `delete` (the default, as Kestra), delete its other flows", _FLOW,
          body=TEXT, consumes=YAML_TYPES, params=(Param("delete", "boolean", default=True),)),
    Route("GET", _F + "/{namespace}/{id}", "get_flow", "Get a flow", _FLOW,
          params=(Param("source", "boolean", default=False), REVISION,
                  Param("allowDeleted", "boolean", default=False)), errors=(404,)),
    Route("PUT", _F + "/{namespace}/{id}", "update_flow", "Update a flow from its YAML source", _FLOW,
          body=FLOW_SOURCE, consumes=(*YAML_TYPES, "application/json"), errors=(404,)),
    Route("DELETE", _F + "/{namespace}/{id}", "delete_flow", "Delete a flow (its revisions are kept)", _FLOW,
          status=204, produces="none", errors=(404,)),
    Route("GET", _F + "/{namespace}/{id}/revisions", "flow_revisions", "Every revision of a flow", _FLOW,
          params=(Param("allowDelete", "boolean", default=False),), errors=(404,)),

    # ------------------------------------------------------------------------------------------ KV
    Route("GET", _KV, "list_kv", "The keys of a namespace", "KV"),
    Route("GET", _KV + "/inheritance", "list_kv_inheritance", "The keys of a namespace and of its parents", "KV"),
    Route("DELETE", _KV, "delete_kv_keys", "Delete several keys", "KV", body=JSON, consumes=("application/json",)),
    Route("GET", _KV + "/{key}", "get_kv", "The typed value of a key", "KV", errors=(404,)),
    Route("PUT", _KV + "/{key}", "put_kv", "Set a key (the body is the value: text, or JSON)", "KV", status=200,
          produces="none", body=TEXT, consumes=("text/plain", "application/json"), headers=("ttl",)),
    Route("DELETE", _KV + "/{key}", "delete_kv", "Delete a key (true if it existed)", "KV"),

    # ------------------------------------------------------------------------------ namespace files
    Route("GET", _NSF + "/search", "search_namespace_files", "Find files which path contain the given string",
          _FILES, params=(Param("q", required=True),)),
    Route("GET", _NSF, "get_namespace_file", "Get namespace file content (its latest or given revision)", _FILES,
          produces="file", params=(NS_PATH_REQUIRED, Param("revision", "integer", description=(
              "The revision (default: the latest)"))), errors=(404,)),
    Route("GET", _NSF + "/stats", "namespace_file_stats", "Get namespace file stats such as size, creation & "
          "modification dates and type", _FILES, params=(NS_PATH,), errors=(404,)),
    Route("GET", _NSF + "/revisions", "namespace_file_revisions", "Get namespace file revisions", _FILES,
          params=(NS_PATH_REQUIRED,), errors=(404,)),
    Route("GET", _NSF + "/directory", "list_namespace_directory", "List directory content", _FILES,
          params=(NS_PATH,), errors=(404,)),
    Route("POST", _NSF + "/directory", "create_namespace_directory", "Create a directory", _FILES,
          produces="none", params=(NS_PATH,)),
    Route("POST", _NSF, "create_namespace_file", "Create a file (the multipart part `fileContent`; a .zip is "
          "extracted)", _FILES, produces="none", body=MULTIPART, consumes=("multipart/form-data",),
          params=(NS_PATH_REQUIRED,), errors=(413,)),
    Route("GET", _NSF + "/export", "export_namespace_files", "Export namespace files as a ZIP", _FILES,
          produces="file"),
    Route("PUT", _NSF, "move_namespace_file", "Move a file or directory", _FILES, produces="none",
          params=(Param("from", required=True, py="source"), Param("to", required=True, py="target")),
          errors=(404,)),
    Route("DELETE", _NSF, "delete_namespace_file", "Delete a file or directory", _FILES, produces="none",
          params=(NS_PATH_REQUIRED,), errors=(404,)),
)


def expand(routes: Iterable[Route]) -> list[Route]:
    """Every served route: each tenant route followed by its tenant-less alias."""
    out: list[Route] = []
    for route in routes:
        out.append(route)
        alias = route.tenant_less()
        if alias is not None:
            out.append(alias)
    return out


@dataclass(slots=True)
class Match:
    """A request matched to a route, with its decoded path variables."""

    route: Route
    variables: dict[str, str]


class Router:
    """Find the route of a request: by method, then the most specific path (Micronaut's precedence)."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = list(routes)
        # (method, segment count) -> [(route, literal checks, variables)], most specific first: a literal
        # beats a variable, the leftmost difference decides
        self._table: dict[tuple[str, int], list[tuple[Route, tuple[tuple[int, str], ...],
                                                      tuple[tuple[int, str], ...]]]] = {}
        self._paths: dict[int, list[tuple[tuple[int, str], ...]]] = {}
        for route in sorted(self.routes, key=lambda r: [1 if _is_var(s) else 0 for s in r.segments]):
            checks = tuple((i, s) for i, s in enumerate(route.segments) if not _is_var(s))
            names = tuple((i, s[1:-1]) for i, s in enumerate(route.segments) if _is_var(s))
            self._table.setdefault((route.method, len(route.segments)), []).append((route, checks, names))
            self._paths.setdefault(len(route.segments), []).append(checks)

    def match(self, method: str, path: str) -> Match | None | str:
        """The match, None when no route has this path, or "method" when only other methods do."""
        segments = [unquote(s) for s in path.split("/") if s]
        n = len(segments)
        for route, checks, names in self._table.get((method if method != "HEAD" else "GET", n), ()):
            for i, literal in checks:
                if segments[i] != literal:
                    break
            else:
                return Match(route, {name: segments[i] for i, name in names})
        for checks in self._paths.get(n, ()):
            if all(segments[i] == literal for i, literal in checks):
                return "method"
        return None


def served_routes(engine: Any) -> list[Route]:
    """The expanded table, without the routes whose engine operation this engine does not have."""
    return [r for r in expand(ROUTES) if r.requires is None or callable(getattr(engine, r.requires, None))]


__all__ = [
    "FLOW_SOURCE",
    "JSON",
    "MULTIPART",
    "ROUTES",
    "TEXT",
    "Match",
    "Param",
    "Route",
    "Router",
    "expand",
    "served_routes",
    "snake",
]
