"""The sandbox against the well-known Jinja2 server-side template injection payloads (spec §7, issue 3).

Templates arrive in HTTP bodies: none of these may reach a Python attribute, method, module, file or
process. Each must fail with a clear ExpressionError (and nothing else may have happened).
"""
from __future__ import annotations

import os

import pytest

from kestra_nb.errors import ExpressionError
from kestra_nb.expressions import Renderer

RENDERER = Renderer()
VARS = {"name": "kestra", "items": [1, 2], "m": {"a": 1}, "config": None}

# what a clear refusal says: forbidden access, an unknown name/function/filter/tag, or no method calls
CLEAR = ("Forbidden", "not allowed", "Unable to find", "does not exist", "Method calls are not supported",
         "Only functions and macros can be called", "Unexpected tag name", "Invalid yaml",
         "reserved character", "invalid operands", "Syntax error")

PAYLOADS = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__base__.__subclasses__()[40]('/etc/passwd').read() }}",
    "{{ [].__class__.__base__.__subclasses__() }}",
    "{{ [].__class__.__base__ }}",
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
    "{{ items.__class__ }}",
    "{{ name.__doc__ }}",
    "{{ name.format }}",
    "{{ name.mro }}",
    "{{ name.upper() }}",
    "{{ name.join(['a']) }}",
    "{{ m.items() }}",
    "{{ m.keys() }}",
    "{{ items.pop() }}",
    "{{ config.items() }}",
    "{{ config.__class__.__init__.__globals__['os'] }}",
    "{{ self }}",
    "{{ self.__dict__ }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('id').read() }}",
    "{{ request.application.__globals__.__builtins__.__import__('os').popen('id').read() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__.os.popen('id').read() }}",
    "{{ namespace.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ lipsum.__globals__.os }}",
    "{{ range.__globals__ }}",
    "{{ url_for.__globals__.os.environ }}",
    "{{ get_flashed_messages.__globals__['current_app'].config }}",
    "{{ ''|attr('__class__')|attr('__mro__') }}",
    "{{ request|attr('application')|attr('\\x5f\\x5fglobals\\x5f\\x5f') }}",
    "{{ 'x'|format(name) }}",
    "{{ '%s' % name }}",
    "{{ '{0.__class__}'.format(name) }}",
    "{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{% if c.__name__ == 'catch_warnings' %}"
    "{{ c()._module.__builtins__['__import__']('os').popen('id').read() }}{% endif %}{% endfor %}",
    "{% import os %}{{ os.system('id') }}",
    "{% include '/etc/passwd' %}",
    "{% extends '/etc/passwd' %}",
    "{% from 'x' import y %}",
    "{% autoescape false %}x{% endautoescape %}",
    "{{ read('/etc/passwd') }}",
    "{{ http(uri='http://127.0.0.1') }}",
    "{{ open('/etc/passwd') }}",
    "{{ __import__('os') }}",
    "{{ eval('1+1') }}",
    "{{ dict(a=1) }}",
    "{{ yaml('!!python/object/apply:os.system [\"id\"]') }}",
    "{{ yaml('!!python/name:os.system') }}",
    "{{ {} | jq('$ENV') }}",
    "{{ {} | jq('env') }}",
    "{{ {} | jq('import \"x\" as y; .') }}",
    "{{ {} | jq('include \"x\"; .') }}",
    "{{ now() | date('{0.__class__}') }}",
    "{% macro m() %}{% endmacro %}{{ m.__globals__ }}",
    "{% macro m() %}{% endmacro %}{{ m._func }}",
    "{% for i in items %}{{ loop.__class__ }}{% endfor %}",
    "{% for i in items %}{{ loop.__init__.__globals__ }}{% endfor %}",
    "{% for e in m %}{{ e.__class__ }}{% endfor %}",
    "{{ _context.__class__ }}",
    "{{ printContext().__class__ }}",
    "{{ environment }}",
    "{{ context.environment }}",
    "{{ caller }}",
    "{{ kwargs }}",
    "{{ varargs }}",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_injection_payload_is_refused_clearly(payload: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ExpressionError) as info:
        RENDERER.render_string(payload, VARS)
    message = info.value.message
    assert any(marker in message for marker in CLEAR), message
    assert payload in message or "expression" in message  # the error names the expression
    assert os.listdir(tmp_path) == []


def test_python_methods_are_not_reachable_as_values() -> None:
    # `name.upper` (no call) is just a missing attribute: a string has no attributes in Pebble
    with pytest.raises(ExpressionError, match="Unable to find `upper`"):
        RENDERER.render_string("{{ name.upper }}", VARS)
    with pytest.raises(ExpressionError, match="Method calls are not supported"):
        RENDERER.render_string("{{ name.upper() }}", VARS)


def test_dict_keys_that_look_like_internals_are_plain_keys() -> None:
    # a map key named like a Python internal is data (outputs of a Mongo query have `_id`)
    assert RENDERER.render_string("{{ row._id }} {{ row.__class__ }}", {"row": {"_id": 7, "__class__": "x"}}) == "7 x"


def test_no_jinja_builtins_are_reachable() -> None:
    for name in ("range", "lipsum", "dict", "cycler", "joiner", "namespace"):
        with pytest.raises(ExpressionError, match=f"Unable to find `{name}`"):
            RENDERER.render_string("{{ %s }}" % name, {})
    for flt in ("attr", "map", "select", "format", "xmlattr", "pprint", "tojson", "safe", "e", "batch"):
        with pytest.raises(ExpressionError, match=rf"Filter \[{flt}\] does not exist"):
            RENDERER.render_string("{{ 'x' | %s }}" % flt, {})


def test_values_handed_back_do_not_leak_objects() -> None:
    # a macro, a loop variable or a map entry prints as text, never as a Python object with attributes
    out = RENDERER.render_string("{% macro m() %}{% endmacro %}{% for e in {'a': 1} %}{{ e }}{% endfor %}", {})
    assert out == "a=1"


def test_secret_values_come_only_from_secret_variables(monkeypatch) -> None:
    monkeypatch.setenv("PATH_LIKE", "not reachable")
    with pytest.raises(ExpressionError, match="Cannot find secret for key 'PATH_LIKE'"):
        RENDERER.render_string("{{ secret('PATH_LIKE') }}", {})
