"""The renderer's public API: modes, cache, truthiness, printing, errors and the runtime hooks."""
from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from kestra_nb.errors import ExpressionError
from kestra_nb.expressions import (
    Limits, Renderer, RuntimeHooks, is_truthy, render_string, render_typed, render_value, to_text,
)
from kestra_nb.expressions import renderer as renderer_module


def test_module_level_functions_use_the_default_renderer() -> None:
    assert render_string("{{ a }}!", {"a": 1}) == "1!"
    assert render_typed("{{ a }}", {"a": [1]}) == [1]
    assert render_value({"{{ k }}": ["{{ v }}", 2]}, {"k": "key", "v": "val"}) == {"key": ["val", 2]}


def test_render_string_prints_non_strings_and_passes_brace_free_text() -> None:
    r = Renderer()
    assert r.render_string(None, {}) == ""
    assert r.render_string({"a": True}, {}) == '{"a":true}'
    assert r.render_string("no template here", {}) == "no template here"


def test_a_string_without_brace_never_reaches_the_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    r = Renderer()

    def boom(source: str) -> None:
        raise AssertionError("parsed")

    monkeypatch.setattr(renderer_module, "parse", boom)
    assert r.render_string("plain text, } only closing", {}) == "plain text, } only closing"
    assert r.render_typed("plain", {}) == "plain"


def test_compiled_templates_are_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    r = Renderer()
    calls: list[str] = []
    real = renderer_module.parse

    def counting(source: str):  # type: ignore[no-untyped-def]
        calls.append(source)
        return real(source)

    monkeypatch.setattr(renderer_module, "parse", counting)
    for i in range(5):
        assert r.render_string("{{ n * 2 }}", {"n": i}) == str(i * 2)
    assert calls == ["{{ n * 2 }}"]


def test_render_value_renders_keys_values_and_items() -> None:
    r = Renderer()
    value = {"{{ a }}": {"nested": ["{{ b }}", 3, None, {"x": "{{ a ~ b }}"}]}, "plain": 1.5}
    assert r.render_value(value, {"a": "A", "b": "B"}) == {"A": {"nested": ["B", 3, None, {"x": "AB"}]}, "plain": 1.5}


def test_typed_mode() -> None:
    r = Renderer()
    assert r.render_typed("{{ m }}", {"m": {"a": 1}}) == {"a": 1}
    assert r.render_typed("  {{ 1 + 1 }}\n", {}) == 2
    assert r.render_typed("{{ a }}-{{ a }}", {"a": 1}) == "1-1"
    assert r.render_typed("{{ nothing }}", {"nothing": None}) is None
    assert r.render_typed(42, {}) == 42
    with pytest.raises(ExpressionError, match="Unable to find `x`"):
        r.render_typed("{{ x }}", {})


@pytest.mark.parametrize(("value", "truthy"), [
    ("true", True), ("false", False), ("0", False), ("-0", False), ("", False), ("False", True), ("no", True),
    (None, False), (True, True), (False, False), (0, False), (1, True), ([], True),
])
def test_is_truthy_is_kestras_string_truthiness(value: object, truthy: bool) -> None:
    assert is_truthy(value) is truthy


@pytest.mark.parametrize(("value", "text"), [
    (None, ""), ("s", "s"), (True, "true"), (1, "1"), (1.0, "1.0"), (1e20, "1.0E20"), ({"a": [1, None]}, '{"a":[1,null]}'),
    (datetime(2024, 5, 6, 7, 8, 9, 500000, tzinfo=timezone.utc), "2024-05-06T07:08:09.500Z"),
])
def test_to_text_prints_like_kestra(value: object, text: str) -> None:
    assert to_text(value) == text


def test_errors_carry_the_expression_and_line() -> None:
    r = Renderer()
    with pytest.raises(ExpressionError) as info:
        r.render_string("a\nb\n{{ x.y }}", {"x": {}})
    assert info.value.message == "Unable to find `y` used in the expression `a\nb\n{{ x.y }}` at line 3"
    assert info.value.expression == "a\nb\n{{ x.y }}"
    assert info.value.line == 3
    with pytest.raises(ExpressionError, match=r"Syntax error in the expression `\{\{ 1 \+ \}\}` at line 1"):
        r.render_string("{{ 1 + }}", {})
    with pytest.raises(ExpressionError, match="at line 2: / by zero"):
        r.render_string("x\n{{ 1 / 0 }}", {})


def test_concurrent_renders_share_the_cache_safely() -> None:
    r = Renderer()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(200):
                t = f"{{% for x in range(1, {i % 5 + 1}) %}}{{{{ x * {n} }}}}{{% endfor %}}"
                expected = "".join(str(x * n) for x in range(1, i % 5 + 2))
                assert r.render_string(t, {}) == expected
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_nested_renders_share_one_budget() -> None:
    r = Renderer(limits=Limits(max_iterations=50))
    inner = "{% for i in range(1, 30) %}{% endfor %}"
    with pytest.raises(ExpressionError, match="more than 50 loop iterations"):
        r.render_string("{{ render(a) }}{{ render(a) }}", {"a": inner})


def test_runtime_hooks_mask_secrets_like_kestra() -> None:
    hooks = RuntimeHooks()
    hooks.use_secret("supersecret123")
    hooks.use_secret("abc")
    assert hooks.mask("pwd=supersecret123 short=abc") == "pwd=**masked****** short=***"
    assert hooks.mask("nothing to hide") == "nothing to hide"


def test_kv_needs_a_store() -> None:
    with pytest.raises(ExpressionError, match="needs a KV store"):
        Renderer().render_string("{{ kv('k') }}", {"flow": {"namespace": "ns"}})


class _Entry:
    def __init__(self, value: object) -> None:
        self.value = value


class _Store:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str, str]] = []

    def kv_get(self, namespace: str, key: str, *, tenant: str = "main") -> _Entry | None:
        self.asked.append((namespace, key, tenant))
        return _Entry({"n": 1}) if key == "there" else None


def test_kv_reads_the_flow_namespace_by_default() -> None:
    store = _Store()
    r = Renderer(store=store)
    variables = {"flow": {"namespace": "company.team", "tenantId": "main"}}
    assert r.render_string("{{ kv('there').n }}", variables) == "1"
    assert r.render_string("{{ kv('there', namespace='other') }}", variables) == '{"n":1}'
    assert r.render_string("{{ kv('gone', errorOnMissing=false) ?? 'fallback' }}", variables) == "fallback"
    with pytest.raises(ExpressionError, match="The key 'gone' does not exist in the namespace 'company.team'."):
        r.render_string("{{ kv('gone') }}", variables)
    assert store.asked[:2] == [("company.team", "there", "main"), ("other", "there", "main")]


def test_secret_reads_base64_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_MY_PASS", "c3VwZXJzZWNyZXQ=")  # "supersecret"
    monkeypatch.setenv("SECRET_JSON", "eyJ1c2VyIjogImFkbWluIn0=")  # {"user": "admin"}
    hooks = RuntimeHooks()
    r = Renderer()
    assert r.render_string("{{ secret('my_pass') }}", {"\x00kestra_runtime": hooks}) == "supersecret"
    assert hooks.secrets == {"supersecret"}
    assert r.render_string("{{ secret('JSON', subkey='user') }}", {}) == "admin"
    with pytest.raises(ExpressionError, match="Cannot find secret for key 'NOPE'."):
        r.render_string("{{ secret('NOPE') }}", {})
    with pytest.raises(ExpressionError, match="Cannot find secret"):  # not a missing attribute: ?? does not help
        r.render_string("{{ secret('NOPE') ?? 'x' }}", {})
