"""KV store tasks (spec §5.20): kv.Set, kv.Get, kv.Delete, kv.GetKeys.

They read and write the store's KV entries, the same ones the KV REST endpoints and the `kv()`
function see, with the same types: `kvType` converts the rendered value (store._common.kv_convert);
without it the rendered value is stored as it is, typed by what it is (store._common.kv_type_of).
"""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from ..errors import IllegalArgumentError, TaskFailure
from ..model.jsonfmt import parse_duration
from ..model.state import utcnow
from ..store._common import KV_TYPES, kv_convert, kv_type_of, tenant_of
from .base import Prop, Task, TaskContext, render_bool

# Kestra's KVStore.validateKey
_KEY = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")


def _key(ctx: TaskContext, raw: Any) -> str:
    if raw is None:
        raise TaskFailure("`key` is required")
    key = ctx.render_string(raw, "key").strip()
    if not _KEY.match(key):
        raise TaskFailure(f"Invalid `key` `{key}`: a key must start with a letter or a digit and contain only "
                          "letters, digits, dots (.), underscores (_) and hyphens (-)")
    return key


def _namespace(ctx: TaskContext, raw: Any) -> str:
    if raw is None:
        return ctx.flow.namespace
    namespace = ctx.render_string(raw, "namespace").strip()
    if not namespace:
        raise TaskFailure("Invalid `namespace`: expected a namespace such as company.team")
    return namespace



def _tenant(ctx: TaskContext) -> str:
    return tenant_of(ctx.execution.tenant_id)


def _store(ctx: TaskContext) -> Any:
    return ctx.renderer.store  # type: ignore[attr-defined]


def _missing(key: str, namespace: str) -> TaskFailure:
    return TaskFailure(f"No value found for key '{key}' in namespace '{namespace}' "
                       "and `errorOnMissing` is set to true")


class Set(Task):
    """Set `key` to the rendered `value` in `namespace`, optionally typed (`kvType`) and expiring (`ttl`)."""

    type = "io.kestra.plugin.core.kv.Set"
    instant = True
    props = (Prop("key", "string", required=True), Prop("value", "any", required=True), Prop("namespace", "string"),
             Prop("overwrite", "bool", default=True), Prop("ttl", "duration"),
             Prop("kvType", "enum", choices=tuple(sorted(KV_TYPES))), Prop("description", "string"))

    async def run(self, ctx: TaskContext) -> None:
        key = _key(ctx, self.prop("key"))
        namespace = _namespace(ctx, self.prop("namespace"))
        raw = self.prop("value")
        if raw is None:
            raise TaskFailure("`value` is required")
        # a lone `{{ expr }}` keeps its type (a map, a number…); maps and lists written in YAML render deeply
        render = ctx.render_typed if isinstance(raw, str) else ctx.render  # type: ignore[attr-defined]
        value = render(raw, "value")
        kv_type_raw = self.prop("kvType")
        if kv_type_raw is not None:
            kv_type = ctx.render_string(kv_type_raw, "kvType").strip()
            if kv_type not in KV_TYPES:
                raise TaskFailure(f"Invalid `kvType` `{kv_type}`: expected one of {', '.join(sorted(KV_TYPES))}")
            if isinstance(raw, str) and not isinstance(value, str) and kv_type != "JSON":
                value = ctx.render_string(raw, "value")  # convert the text, as Kestra does
            try:
                value = kv_convert(value, kv_type)
            except IllegalArgumentError as exc:
                raise TaskFailure(f"Invalid `value`: {exc.message}") from None
        else:
            if value is None:
                raise TaskFailure("Invalid `value`: it rendered to null, expected a value to store")
            kv_type = kv_type_of(value)
        expiration = None
        ttl = self.prop("ttl")
        if ttl is not None:
            text = ctx.render_string(ttl, "ttl").strip() if isinstance(ttl, str) else ttl
            try:
                duration = text if not isinstance(text, str) else parse_duration(text)
            except ValueError:
                raise TaskFailure(f"Invalid `ttl` `{text}`: expected an ISO-8601 duration such as PT1H") from None
            expiration = utcnow() + duration
        description = self.prop("description")
        if description is not None:
            description = ctx.render_string(description, "description")
        store, tenant = _store(ctx), _tenant(ctx)
        if not render_bool(ctx, self.prop("overwrite"), "overwrite", True) and \
                store.kv_get(namespace, key, tenant=tenant) is not None:
            raise TaskFailure(f"Cannot set value for key '{key}'. "
                              "Key already exists and `overwrite` is set to `false`.")
        store.kv_put(namespace, key, value, kv_type, expiration=expiration, description=description, tenant=tenant)
        return None


class Get(Task):
    """The value of `key` in `namespace` → `value` (null when missing, unless `errorOnMissing`)."""

    type = "io.kestra.plugin.core.kv.Get"
    instant = True
    props = (Prop("key", "string", required=True), Prop("namespace", "string"),
             Prop("errorOnMissing", "bool", default=False))

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        key = _key(ctx, self.prop("key"))
        namespace = _namespace(ctx, self.prop("namespace"))
        entry = _store(ctx).kv_get(namespace, key, tenant=_tenant(ctx))
        if entry is None:
            if render_bool(ctx, self.prop("errorOnMissing"), "errorOnMissing", False):
                raise _missing(key, namespace)
            return {"value": None}
        value = entry.value
        if isinstance(value, date) and not isinstance(value, datetime):
            value = value.isoformat()
        return {"value": value}


class Delete(Task):
    """Delete `key` in `namespace` → `deleted`; a missing key fails only with `errorOnMissing`."""

    type = "io.kestra.plugin.core.kv.Delete"
    instant = True
    props = (Prop("key", "string", required=True), Prop("namespace", "string"),
             Prop("errorOnMissing", "bool", default=False))

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        key = _key(ctx, self.prop("key"))
        namespace = _namespace(ctx, self.prop("namespace"))
        deleted = _store(ctx).kv_delete(namespace, key, tenant=_tenant(ctx))
        if not deleted and render_bool(ctx, self.prop("errorOnMissing"), "errorOnMissing", False):
            raise _missing(key, namespace)
        return {"deleted": deleted}


class GetKeys(Task):
    """The live keys of `namespace` starting with `prefix` → `keys`."""

    type = "io.kestra.plugin.core.kv.GetKeys"
    instant = True
    props = (Prop("prefix", "string"), Prop("namespace", "string"))

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        namespace = _namespace(ctx, self.prop("namespace"))
        prefix = ctx.render_string(self.prop("prefix"), "prefix") if self.prop("prefix") is not None else ""
        entries = _store(ctx).kv_list(namespace, tenant=_tenant(ctx))
        return {"keys": sorted(e.key for e in entries if e.key.startswith(prefix))}


__all__ = ["Delete", "Get", "GetKeys", "Set"]
