"""Kestra's (deprecated) state store tasks: state.Get, state.Set, state.Delete.

A state is a named JSON map kept per flow (or per namespace with `namespace: true`) and, by default, per
`taskrun.value` inside loops. Since Kestra 0.19 the state store lives in the KV store of the flow's
namespace (it used to be files under `states/` in the internal storage; Kestra migrates them with
`kestra sys state-store migrate`), under a key built as Kestra's StateStore builds it:

    [<flow id slug>_]states_tasks-states_<name>[_<murmur3 hash of taskrun.value>]

The value is the JSON text of the map, so the KV REST endpoints show it as Kestra's do (a STRING).
"""
from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from ..errors import TaskFailure
from ..model.jsonfmt import dumps
from ..store._common import tenant_of
from .base import Prop, Task, TaskContext, render_bool

STATE_NAME = "tasks-states"
_MASK = (1 << 64) - 1


def slug(text: str) -> str:
    """Kestra's Slugify.of: whitespace to `-`, accents and anything but [A-Za-z0-9_-] dropped, `_` to `-`."""
    text = re.sub(r"\s", "-", text)
    text = re.sub(r"[^A-Za-z0-9_-]", "", unicodedata.normalize("NFD", text)).replace("_", "-")
    text = re.sub(r"-{2,}", "-", text)
    return text.strip("-").lower()


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _MASK


def _fmix(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & _MASK
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & _MASK
    return k ^ (k >> 33)


def murmur3_128_hex(text: str) -> str:
    """MurmurHash3 x64 128-bit (seed 0) of the UTF-8 text, as Guava prints it (h1 then h2, little-endian bytes)."""
    data = text.encode("utf-8")
    c1, c2 = 0x87C37B91114253D5, 0x4CF5AD432745937F
    h1 = h2 = 0
    n = len(data) // 16
    for i in range(n):
        k1 = int.from_bytes(data[16 * i:16 * i + 8], "little")
        k2 = int.from_bytes(data[16 * i + 8:16 * i + 16], "little")
        h1 ^= _rotl((k1 * c1) & _MASK, 31) * c2 & _MASK
        h1 = (_rotl(h1, 27) + h2) & _MASK
        h1 = (h1 * 5 + 0x52DCE729) & _MASK
        h2 ^= _rotl((k2 * c2) & _MASK, 33) * c1 & _MASK
        h2 = (_rotl(h2, 31) + h1) & _MASK
        h2 = (h2 * 5 + 0x38495AB5) & _MASK
    tail = data[16 * n:]
    if len(tail) > 8:
        k2 = int.from_bytes(tail[8:], "little")
        h2 ^= _rotl((k2 * c2) & _MASK, 33) * c1 & _MASK
    if tail:
        k1 = int.from_bytes(tail[:8], "little")
        h1 ^= _rotl((k1 * c1) & _MASK, 31) * c2 & _MASK
    h1 ^= len(data)
    h2 ^= len(data)
    h1 = (h1 + h2) & _MASK
    h2 = (h2 + h1) & _MASK
    h1, h2 = _fmix(h1), _fmix(h2)
    h1 = (h1 + h2) & _MASK
    h2 = (h2 + h1) & _MASK
    return (h1.to_bytes(8, "little") + h2.to_bytes(8, "little")).hex()


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Kestra's MapUtils.merge: maps merged deeply, lists concatenated, a null never replaces a value."""
    out = dict(base)
    for key, value in top.items():
        original = out.get(key)
        if value is None:
            out[key] = original
        elif isinstance(value, dict) and isinstance(original, dict):
            out[key] = merge(original, value)
        elif isinstance(value, list) and isinstance(original, list):
            out[key] = original + value
        else:
            out[key] = value
    return out


_COMMON = (Prop("name", "string", default="default"), Prop("namespace", "bool", default=False),
           Prop("taskrunValue", "bool", default=True))


class _State(Task):
    props = _COMMON

    def _name(self, ctx: TaskContext) -> str:
        raw = self.prop("name")
        name = ctx.render_string(raw, "name").strip() if raw is not None else "default"
        if not name:
            raise TaskFailure("Invalid `name`: must not be blank")
        return name

    def _key(self, ctx: TaskContext, name: str) -> str:
        flow_scoped = not render_bool(ctx, self.prop("namespace"), "namespace", False)
        key = f"states_{STATE_NAME}_{name}"
        if flow_scoped:
            key = f"{slug(ctx.flow.id)}_{key}"
        value = ctx.task_run.value
        if render_bool(ctx, self.prop("taskrunValue"), "taskrunValue", True) and value is not None:
            key += "_" + murmur3_128_hex(value)
        if not re.match(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$", key):
            raise TaskFailure(f"Invalid `name` `{name}`: the state key `{key}` may hold only letters, digits, "
                              "dots (.), underscores (_) and hyphens (-)")
        return key

    @staticmethod
    def _where(ctx: TaskContext) -> tuple[Any, str, str]:
        return ctx.renderer.store, ctx.flow.namespace, tenant_of(ctx.execution.tenant_id)  # type: ignore[attr-defined]

    def _read(self, ctx: TaskContext, key: str) -> dict[str, Any] | None:
        store, namespace, tenant = self._where(ctx)
        entry = store.kv_get(namespace, key, tenant=tenant)
        if entry is None:
            return None
        value = entry.value
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise TaskFailure(f"State {key} is not a JSON map") from None
        if not isinstance(value, dict):
            raise TaskFailure(f"State {key} is not a JSON map")
        return value


class Get(_State):
    """The state `name` → `data` (its map) and `count` (its size); missing is empty unless `errorOnMissing`."""

    type = "io.kestra.plugin.core.state.Get"
    aliases = ("io.kestra.core.tasks.states.Get",)
    instant = True
    props = (*_COMMON, Prop("errorOnMissing", "bool", default=False))

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        key = self._key(ctx, self._name(ctx))
        data = self._read(ctx, key)
        if data is None:
            if render_bool(ctx, self.prop("errorOnMissing"), "errorOnMissing", False):
                raise TaskFailure(f"State {key} not found")
            data = {}
        return {"count": len(data), "data": data}


class Set(_State):
    """Merge `data` (rendered) into the state `name` → `count` (its size after) and `key` (its KV key)."""

    type = "io.kestra.plugin.core.state.Set"
    aliases = ("io.kestra.core.tasks.states.Set",)
    instant = True
    props = (*_COMMON, Prop("data", "map"))

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        key = self._key(ctx, self._name(ctx))
        raw = self.prop("data")
        data = ctx.render(raw, "data") if raw is not None else {}
        if isinstance(data, str):  # an expression rendering to a JSON object
            try:
                data = json.loads(data)
            except ValueError:
                data = None
        if not isinstance(data, dict):
            raise TaskFailure("Invalid `data`: expected a map of names to values")
        merged = merge(self._read(ctx, key) or {}, {str(k): v for k, v in data.items()})
        store, namespace, tenant = self._where(ctx)
        store.kv_put(namespace, key, dumps(merged), "STRING", tenant=tenant)
        return {"count": len(merged), "key": key}


class Delete(_State):
    """Delete the state `name` → `deleted`; a missing state fails only with `errorOnMissing`."""

    type = "io.kestra.plugin.core.state.Delete"
    aliases = ("io.kestra.core.tasks.states.Delete",)
    instant = True
    props = (*_COMMON, Prop("errorOnMissing", "bool", default=False))

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        name = self._name(ctx)
        store, namespace, tenant = self._where(ctx)
        deleted = bool(store.kv_delete(namespace, self._key(ctx, name), tenant=tenant))
        if not deleted and render_bool(ctx, self.prop("errorOnMissing"), "errorOnMissing", False):
            raise TaskFailure(f"Unable to find the state file '{name}'")
        return {"deleted": deleted}


__all__ = ["Delete", "Get", "Set", "merge", "murmur3_128_hex", "slug"]
