"""The OpenAPI 3 document of what we serve, derived from the route table (so the two cannot drift apart)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import __version__
from .routes import FLOW_SOURCE, JSON, MULTIPART, TEXT, Param, Route

_TYPES = {
    "string": {"type": "string"},
    "integer": {"type": "integer", "format": "int32"},
    "boolean": {"type": "boolean"},
    "duration": {"type": "string", "format": "duration"},
    "datetime": {"type": "string", "format": "date-time"},
}
_REF = {"$ref": "#/components/schemas/JsonError"}
_DESCRIPTIONS = {200: "OK", 202: "Accepted", 204: "No Content", 400: "Bad request (a query value, the tenant)",
                 401: "Authentication required", 403: "Forbidden: a Host this server does not answer to, or a "
                 "state-changing request from a foreign origin", 404: "Not found", 409: "Illegal state",
                 413: "Too large: a file over the upload limit, a namespace over its file count",
                 415: "Unsupported media type", 422: "Invalid entity or illegal argument"}


def _parameter(param: Param) -> dict[str, Any]:
    if param.type == "filters":
        return {"name": param.name, "in": "query", "required": False, "style": "deepObject", "explode": True,
                "description": param.description,
                "schema": {"type": "object", "additionalProperties": {"type": "object"}}}
    schema: dict[str, Any] = dict(_TYPES.get(param.type, {"type": "string"}))
    if param.default is not None:
        schema["default"] = param.default
    if param.multi:
        schema = {"type": "array", "items": schema}
    out: dict[str, Any] = {"name": param.name, "in": "query", "required": param.required, "schema": schema}
    if param.description:
        out["description"] = param.description
    return out


def _body(route: Route) -> dict[str, Any] | None:
    if route.body is None:
        return None
    if route.body == MULTIPART and route.operation == "create_namespace_file":
        return {"required": True, "description": "The file as the part `fileContent` (a .zip is extracted)",
                "content": {"multipart/form-data": {"schema": {"type": "object", "required": ["fileContent"],
                            "properties": {"fileContent": {"type": "string", "format": "binary"}}}}}}
    if route.body == MULTIPART:
        content = {"multipart/form-data": {"schema": {"type": "object", "additionalProperties": {
            "oneOf": [{"type": "string"}, {"type": "string", "format": "binary"}]}}}}
        return {"required": False, "description": "Inputs: one part per input, files as file parts",
                "content": content}
    if route.body == FLOW_SOURCE:
        return {"required": True, "content": {t: {"schema": {"type": "string"}} if t != "application/json"
                                              else {"schema": {"type": "object"}} for t in route.consumes}}
    if route.body == JSON:
        return {"required": True, "content": {"application/json": {"schema": {}}}}
    if route.body == TEXT:
        return {"required": True, "content": {t: {"schema": {"type": "string"}} for t in route.consumes}}
    return None


def _success(route: Route) -> dict[str, Any]:
    description = _DESCRIPTIONS.get(route.status, "OK")
    if route.produces == "none":
        return {"description": description}
    if route.produces == "text":
        return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}
    if route.produces == "sse":
        return {"description": description, "content": {"text/event-stream": {"schema": {"type": "string"}}}}
    if route.produces == "file":
        return {"description": description, "content": {"application/octet-stream": {
            "schema": {"type": "string", "format": "binary"}}}}
    return {"description": description, "content": {"application/json": {"schema": {}}}}


def operation_id(route: Route) -> str:
    """A unique operationId: the service operation, suffixed for the tenant-less and 2.0 forms."""
    suffix = "" if "{tenant}" in route.path or not route.path.startswith("/api/v1/") else "_without_tenant"
    if "/actions/" in route.path:
        suffix = "_actions" + suffix
    if "/trigger/" in route.path:
        suffix = "_trigger" + suffix
    if route.path.endswith("/replay-with-inputs"):
        suffix = "_with_inputs" + suffix
    return route.operation + suffix


# how each server authenticates: its security scheme (None: no credentials, the standalone server on loopback)
SCHEMES: dict[str, dict[str, Any]] = {
    "basic": {"basicAuth": {"type": "http", "scheme": "basic",
                            "description": "--basic-auth USER:PASSWORD (or KESTRA_NB_BASIC_AUTH); the BASIC_AUTH "
                                           "cookie holding the same token is accepted too"}},
    "bearer": {"bearerAuth": {"type": "http", "scheme": "bearer",
                              "description": "--token TOKEN (or KESTRA_NB_API_TOKEN), sent as "
                                             "`Authorization: Bearer <token>`"}},
    "jupyter": {"jupyterToken": {"type": "apiKey", "in": "header", "name": "Authorization",
                                 "description": "Jupyter Server's token as `Authorization: token <token>` (or "
                                                "its login cookie with the _xsrf token on state-changing calls)"}},
}


SCHEMES["basic+bearer"] = {**SCHEMES["basic"], **SCHEMES["bearer"]}   # either one passes


def document(routes: Iterable[Route], security: str | None = "basic") -> dict[str, Any]:
    """The OpenAPI 3.0 document of `routes`, as served with `security` (a key of SCHEMES, or None when the
    server asks for no credentials). The Host and Origin checks (api.guard) answer 403 on every route."""
    schemes = SCHEMES[security] if security is not None else {}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        parameters = [{"name": v, "in": "path", "required": True, "schema": {"type": "string"}}
                      for v in route.variables]
        parameters += [_parameter(p) for p in route.params]
        parameters += [{"name": h, "in": "header", "required": False, "schema": {"type": "string"}}
                       for h in route.headers]
        responses: dict[str, Any] = {str(route.status): _success(route)}
        errors = {400, 403, 422, *route.errors} | ({401} if route.auth and schemes else set()) | (
            {415} if route.consumes else set())
        for status in sorted(errors):
            if status == 302:
                responses["302"] = {"description": "The file belongs to another execution of the same flow: "
                                                   "its URL is in `Location`"}
                continue
            responses[str(status)] = {"description": _DESCRIPTIONS.get(status, "Error"),
                                      "content": {"application/json": {"schema": _REF}}}
        op: dict[str, Any] = {"operationId": operation_id(route), "summary": route.summary, "tags": [route.tag],
                              "parameters": parameters, "responses": responses}
        body = _body(route)
        if body is not None:
            op["requestBody"] = body
        if not route.auth and schemes:
            op["security"] = []
        if route.path.startswith("/api/v1/") and "{tenant}" not in route.path and route.operation != "openapi":
            op["description"] = "The tenant-less form: served as the `main` tenant."
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "kestra_nb", "version": __version__,
                 "description": "Kestra's Executions, Flows, Logs and KV REST API, served by kestra_nb."},
        "paths": paths,
        "components": {
            **({"securitySchemes": schemes} if schemes else {}),
            "schemas": {"JsonError": {"type": "object", "required": ["message"], "properties": {
                "message": {"type": "string"}, "_links": {"type": "object"}, "_embedded": {"type": "object"}}}},
        },
        **({"security": [{name: []} for name in schemes]} if schemes else {}),
    }


__all__ = ["SCHEMES", "document", "operation_id"]
