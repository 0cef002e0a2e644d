"""Webhook triggers: `GET|POST|PUT /api/v1/[{tenant}/]executions/webhook/{namespace}/{flowId}/{key}` (spec §2.13).

The webhook routes are open, as in Kestra's usual set-up (`open-urls: /api/v1/main/executions/webhook/`):
the trigger's `key` is the secret. Both servers mount `webhook_handlers()` before the API's catch-all,
without their authentication (the standalone server's Basic auth, Jupyter's token): external systems
call webhooks with no credentials. Every other route keeps its authentication.

`Webhooks.trigger` is transport-free (bytes, headers and query parameters in, a `WebhookAnswer` out):
- an enabled Webhook trigger of the flow whose `key`, rendered when it is a template, equals the path's
  key; an unknown flow and a wrong key are the same 404 `Not Found: Webhook not found` (no flow ids
  to be learnt without a key); a disabled flow is 409 to a caller holding its key;
- `trigger = {id, type, variables: {body, headers, parameters}}`: the body parsed as a JSON object or
  array, else kept as text (omitted when empty); headers (tornado's Title-Case names) and query
  parameters as name -> list of values. Expression `conditions` not met: 204, no execution;
- the answer: Kestra 1.x's `{tenantId, id, namespace, flowId, flowRevision, trigger, outputs, labels,
  state, url}`; with `wait: true` once the execution is finished (500 if it FAILED, unless
  `responseCode`), with `returnOutputs: true` the outputs map alone; `responseContentType` and
  `responseCode` as set on the trigger.
"""
from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import tornado.web
from tornado.iostream import StreamClosedError

from ..engine.conditions import ConditionContext, holds
from ..engine.scheduler import build_execution, is_off
from ..errors import IllegalStateError, KestraNbError, NotFoundError
from ..model.flow import Flow
from ..model.jsonfmt import dumps
from ..parsing import parse_flow
from ..parsing.triggers import WEBHOOK, is_template
from .errors import BadRequest, error_status, json_error
from .guard import Forbidden, Guard
from .handlers import on_engine_loop
from .service import ApiService, Watch

log = logging.getLogger(__name__)

TENANT = "main"
WEBHOOK_NOT_FOUND = "Webhook not found"
JSON_TYPE = "application/json"


@dataclass(slots=True)
class WebhookAnswer:
    """What to send back: a status, a content type (None without a body) and the body."""

    status: int
    content_type: str | None = None
    body: bytes = b""


def parse_body(raw: bytes) -> Any:
    """A JSON object or array when the body is one, else its text (None when empty)."""
    if not raw:
        return None
    text = raw.decode("utf-8", "replace")
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (dict, list)) else text


class Webhooks:
    """Webhook triggers over one `ApiService` (its engine, store and watches)."""

    def __init__(self, service: ApiService) -> None:
        self.service = service
        self.engine = service.engine

    def _flow(self, namespace: str, flow_id: str) -> tuple[Flow | None, int, str | None]:
        """(flow, revision, why it cannot run) of a stored flow; (None, 0, None) when there is none."""
        record = self.service.store.get_flow(namespace, flow_id)
        if record is None:
            return None, 0, None
        try:
            flow = parse_flow(record.source)
        except KestraNbError as exc:
            return None, record.revision, f"Requested Flow is not valid. Error: {exc}"
        return flow, record.revision, "Requested Flow is disabled." if flow.disabled else None

    def find(self, flow: Flow, revision: int, key: str, tenant: str = TENANT) -> dict[str, Any] | None:
        """The enabled Webhook trigger of `flow` whose (rendered) key is `key` (compared in constant time)."""
        context = {"flow": {"id": flow.id, "namespace": flow.namespace, "revision": revision, "tenantId": tenant},
                   "vars": flow.variables}
        for spec in flow.triggers:
            if spec.get("type") != WEBHOOK or spec.get("disabled") is True:
                continue
            written = str(spec.get("key", ""))
            if is_template(written):
                try:
                    written = self.engine.renderer.render_string(written, context)
                except Exception as exc:  # noqa: BLE001 - a key that cannot be rendered matches nothing
                    log.warning("kestra_nb: webhook key of %s.%s trigger '%s' cannot be rendered: %s",
                                flow.namespace, flow.id, spec.get("id"), exc)
                    continue
            if hmac.compare_digest(written.encode("utf-8"), key.encode("utf-8")):
                if is_off(self.service.store, (flow.namespace, flow.id, str(spec["id"])), tenant):
                    continue   # disabled by a Toggle or stopped by `stopAfter`: as if disabled
                return spec
        return None

    def _webhook(self, namespace: str, flow_id: str, key: str, tenant: str) -> tuple[Flow, int, dict[str, Any]]:
        """The flow and its trigger for `key`. An unknown flow, an unparsable one and a wrong key are the same
        404 (`Not Found: Webhook not found`), so nobody without a key can tell which flows exist; a flow
        that cannot run (disabled) is 409 only to a caller holding its key."""
        flow, revision, unrunnable = self._flow(namespace, flow_id)
        spec = self.find(flow, revision, key, tenant) if flow is not None else None
        if spec is None:
            if flow is None and unrunnable is not None:
                log.warning("kestra_nb: webhook call of %s.%s: %s", namespace, flow_id, unrunnable)
            raise NotFoundError(WEBHOOK_NOT_FOUND)
        if unrunnable is not None:
            raise IllegalStateError(unrunnable)
        assert flow is not None
        return flow, revision, spec

    async def trigger(self, namespace: str, flow_id: str, key: str, *, body: bytes = b"",
                      headers: Iterable[tuple[str, str]] = (), parameters: Mapping[str, list[str]] | None = None,
                      tenant: str = TENANT) -> WebhookAnswer:
        """Run the flow for one webhook call; errors are raised as `KestraNbError`s (see `api.errors`)."""
        if tenant != TENANT:
            raise BadRequest(f"Bad Request: Tenant '{tenant}' does not exist: this server only serves the "
                             f"'{TENANT}' tenant")
        flow, revision, spec = self._webhook(namespace, flow_id, key, tenant)
        header_map: dict[str, list[str]] = {}
        for name, value in headers:
            header_map.setdefault(name, []).append(value)
        variables: dict[str, Any] = {}
        parsed = parse_body(body)
        if parsed is not None:
            variables["body"] = parsed
        variables["headers"] = header_map
        variables["parameters"] = {k: list(v) for k, v in (parameters or {}).items()}
        for condition in spec.get("conditions") or ():
            if not self._holds(flow, revision, condition, variables, tenant):
                return WebhookAnswer(204)
        ex = build_execution(self.engine, flow, revision, spec, variables, tenant)
        wait = spec.get("wait") is True
        watch = Watch(self.service, ex.id) if wait else None
        try:
            await self.engine.start(flow, ex)
            doc = ex.to_dict() if watch is None else await watch.finished()
        finally:
            if watch is not None:
                watch.close()
        assert doc is not None
        status = 200
        if wait and doc["state"]["current"] == "FAILED":
            status = 500
        if isinstance(spec.get("responseCode"), int):
            status = spec["responseCode"]
        if spec.get("returnOutputs") is True and wait:
            payload: Any = doc.get("outputs") or {}
        else:
            payload = self.response(doc)
        content_type = str(spec.get("responseContentType") or JSON_TYPE)
        if content_type == "text/plain":
            text = payload if isinstance(payload, str) else dumps(payload)
            return WebhookAnswer(status, "text/plain; charset=UTF-8", text.encode("utf-8"))
        return WebhookAnswer(status, JSON_TYPE, dumps(payload).encode("utf-8"))

    def _holds(self, flow: Flow, revision: int, condition: Mapping[str, Any], variables: Mapping[str, Any],
               tenant: str) -> bool:
        context = {"flow": {"id": flow.id, "namespace": flow.namespace, "revision": revision, "tenantId": tenant},
                   "trigger": dict(variables), "vars": flow.variables}
        ctx = ConditionContext(flow.namespace, flow.id,
                               lambda text: self.engine.renderer.render_string(text, context))
        try:
            return holds(condition, ctx)
        except Exception:  # noqa: BLE001 - a condition that cannot be evaluated does not hold
            return False

    def response(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """Kestra 1.x's WebhookResponse of an execution document (nulls omitted)."""
        out: dict[str, Any] = {"tenantId": doc.get("tenantId") or TENANT}
        for key in ("id", "namespace", "flowId", "flowRevision", "trigger", "outputs", "labels", "state"):
            if doc.get(key) is not None and (key != "outputs" or doc[key]):
                out[key] = doc[key]
        out["url"] = self.service._response(doc)["url"]
        return out


class WebhookHandler(tornado.web.RequestHandler):
    """The open webhook route; path arguments are ([tenant,] namespace, flowId, key)."""

    SUPPORTED_METHODS = ("GET", "POST", "PUT")

    def initialize(self, webhooks: Webhooks, guard: Guard | None = None) -> None:
        """Tornado's per-request set-up."""
        self.webhooks = webhooks
        self.guard = guard

    def prepare(self) -> None:
        """The server's Host and Origin checks (api.guard): a webhook call of any method starts an
        execution, so a foreign page's is refused like any state-changing request."""
        if self.guard is None:
            return
        for name, value in self.guard.cors_headers(self.request.headers).items():
            self.set_header(name, value)
        try:
            self.guard.check(self.request.method or "GET", self.request.headers, state_changing=True)
        except Forbidden as exc:
            self._answer_error(exc)

    def check_xsrf_cookie(self) -> None:
        """No XSRF check: webhooks are called by other systems, with the key as their secret."""

    def compute_etag(self) -> str | None:
        """No ETag."""
        return None

    async def get(self, *args: str) -> None:
        await self._serve(args)

    async def post(self, *args: str) -> None:
        await self._serve(args)

    async def put(self, *args: str) -> None:
        await self._serve(args)

    async def _serve(self, args: tuple[str, ...]) -> None:
        tenant, (namespace, flow_id, key) = (args[0], args[1:]) if len(args) == 4 else (TENANT, args)
        request = self.request
        try:
            body, headers = request.body or b"", list(request.headers.get_all())
            parameters = {k: [v.decode("utf-8", "replace") for v in vs] for k, vs in request.query_arguments.items()}
            answer = await on_engine_loop(self.webhooks.engine, lambda: self.webhooks.trigger(
                namespace, flow_id, key, body=body, headers=headers, parameters=parameters, tenant=tenant))
        except Exception as exc:  # noqa: BLE001 - every error becomes a JsonError, never a traceback
            self._answer_error(exc)
            return
        self.set_status(answer.status)
        if answer.content_type is not None and answer.status != 204:
            self.set_header("Content-Type", answer.content_type)
            self._finish(answer.body)
        else:
            self._finish()

    def _answer_error(self, exc: BaseException) -> None:
        status, reason, message, embedded = error_status(exc)
        self.set_status(status, reason)
        self.set_header("Content-Type", JSON_TYPE)
        self._finish(dumps(json_error(message, self.request.path, embedded)).encode("utf-8"))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Tornado's own errors (a malformed request, a method other than GET/POST/PUT) as a JsonError."""
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(dumps(json_error(self._reason or "Error", self.request.path)))

    def _finish(self, body: bytes | None = None) -> None:
        try:
            self.finish(body)
        except StreamClosedError:
            pass   # the caller left before the answer


def webhook_handlers(webhooks: Webhooks, prefix: str = "", handler: type[WebhookHandler] = WebhookHandler,
                     guard: Guard | None = None) -> list[tuple[str, type[tornado.web.RequestHandler], dict[str, Any]]]:
    """The tornado URL specs of the webhook routes under `prefix`, behind `guard`; mount them before the
    API's catch-all."""
    base = prefix.rstrip("/")
    options = {"webhooks": webhooks, "guard": guard}
    segment = r"([^/]+)"
    tail = rf"/executions/webhook/{segment}/{segment}/{segment}/?"
    return [(rf"{base}/api/v1{tail}", handler, options),
            (rf"{base}/api/v1/{segment}{tail}", handler, options)]


__all__ = ["WebhookAnswer", "WebhookHandler", "Webhooks", "parse_body", "webhook_handlers"]
