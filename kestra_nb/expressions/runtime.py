"""What compiled templates call at render time: Pebble's operators, attribute access and limits.

Compiled templates never touch a Python attribute or method of a value: `a.b` and `a[b]` go through
`get_attribute` (map keys, list indexes, the Pebble loop variables — nothing else), operators follow
Pebble 3.2's Java semantics (`+` concatenates when a side is a string, integer division truncates,
64-bit overflow wraps, comparisons of null are false), and every loop iteration, macro call and
collection built is counted against the render's `Budget` so runaway templates stop with a clear error.

Errors: `Missing` is Pebble's AttributeNotFoundException (what `??`, `???`, `default` and `is defined`
swallow); `RenderError` is any other rendering failure, its message shown as is.
"""
from __future__ import annotations

import math
import re
import time
from decimal import Decimal, DecimalException, localcontext
from typing import Any, Callable, Iterable, Iterator

from jinja2.runtime import Macro

from .values import (
    DEFAULT_LIMIT,
    JFloat,
    MapEntry,
    OutputTooLarge,
    hash_ordered,
    java_str,
    literal_map_capacity,
    to_float32,
    type_name,
    wrap_long,
)

BUDGET = "\x00kestra_budget"   # the per-render Budget, in the variables (no template can name it)
RUNTIME = "\x00kestra_runtime"  # the task-run hooks (store, logs, secrets), set by the engine


class Missing(Exception):
    """Pebble's AttributeNotFoundException: a variable, key or index does not exist (or a null was read)."""

    def __init__(self, name: str, line: int | None = None) -> None:
        super().__init__(name)
        self.name = name
        self.line = line


class MissingValue(Missing):
    """A function found nothing to return (a `kv()` key that does not exist): `??`, `???`, `default` and
    `is defined` take it as a missing value; uncaught, it fails the render with its own message."""

    def __init__(self, message: str, name: str, line: int | None = None) -> None:
        super().__init__(name, line)
        self.message = message


class RenderError(Exception):
    """A template failed for a reason other than a missing attribute; the message is user-facing."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class Forbidden(RenderError):
    """The template tried to reach something the sandbox does not allow."""


class LimitExceeded(RenderError):
    """The template exceeded a rendering limit (output size, iterations, time, depth)."""


class Limits:
    """The rendering limits of one Renderer (tests make them small)."""

    __slots__ = ("max_output", "max_iterations", "max_seconds", "max_depth", "max_collection")

    def __init__(self, max_output: int = 10_000_000, max_iterations: int = 1_000_000,
                 max_seconds: float = 10.0, max_depth: int = 64, max_collection: int = 1_000_000) -> None:
        self.max_output = max_output
        self.max_iterations = max_iterations
        self.max_seconds = max_seconds
        self.max_depth = max_depth
        self.max_collection = max_collection


class Budget:
    """What one render may still spend; shared by nested renders (`render()`, macros)."""

    __slots__ = ("limits", "deadline", "iterations", "depth")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.max_seconds
        self.iterations = 0
        self.depth = 0  # nested macro calls and render() calls

    def tick(self, n: int = 1) -> None:
        """Count loop iterations; check the time every 256 of them."""
        self.iterations += n
        if self.iterations > self.limits.max_iterations:
            raise LimitExceeded(f"Rendering limit exceeded: more than {self.limits.max_iterations} loop iterations")
        if not self.iterations & 0xFF:
            self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise LimitExceeded(f"Rendering limit exceeded: rendering took more than {self.limits.max_seconds:g} s")

    def check_size(self, size: int, what: str = "a value") -> None:
        if size > self.limits.max_output:
            raise LimitExceeded(
                f"Rendering limit exceeded: {what} longer than {self.limits.max_output} characters")

    def check_collection(self, size: int, what: str = "a list") -> None:
        if size > self.limits.max_collection:
            raise LimitExceeded(
                f"Rendering limit exceeded: {what} with more than {self.limits.max_collection} elements")


def budget_of(context: Any) -> Budget:
    """The Budget of the render a Jinja context belongs to, created on first use.

    A nested render (`render()`) passes its parent's Budget in the variables; a top-level render gets
    one the first time a loop, macro or big value needs it, so cheap templates never pay for it.
    """
    budget = context.vars.get(BUDGET)
    if budget is None:
        budget = context.parent.get(BUDGET)
        if budget is None:
            renderer = getattr(context.environment, "kestra_renderer", None)
            budget = Budget(renderer.limits if renderer is not None else Limits())
        context.vars[BUDGET] = budget
    return budget


# ------------------------------------------------------------------------------------------- access

_INDEX = re.compile(r"[+-]?[0-9]+")
_LOOP_ATTRIBUTES = frozenset({"index", "revindex", "length", "first", "last"})


def get_attribute(obj: Any, key: Any, root: str | None, line: int) -> Any:
    """Pebble's GetAttributeExpression: map key, list index, loop variable; nothing of Python's."""
    if type(obj) is dict:
        try:
            return obj[key]
        except KeyError:
            raise Missing(java_str(key), line) from None
        except TypeError:
            raise Missing(java_str(key), line) from None
    if obj is None:
        # reading an attribute of null: Pebble names the variable when the null came straight from one
        raise Missing(root if root is not None else java_str(key), line)
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        raise Missing(java_str(key), line)
    if isinstance(obj, (list, tuple)):
        # Pebble's ListResolver: Integer.parseInt(String.valueOf(key)), out of bounds is missing
        if isinstance(key, int) and not isinstance(key, bool):
            index = key
        elif isinstance(key, str) and _INDEX.fullmatch(key):
            index = int(key)
        else:
            _refuse(key, line)
            raise Missing(java_str(key), line)
        if 0 <= index < len(obj):
            return obj[index]
        raise Missing(java_str(key), line)
    if isinstance(obj, LoopVariables):
        if key in _LOOP_ATTRIBUTES:
            return getattr(obj, key)
        _refuse(key, line)
        raise Missing(java_str(key), line)
    if isinstance(obj, MapEntry):
        if key == "key":
            return obj.key
        if key == "value":
            return obj.value
    _refuse(key, line)
    raise Missing(java_str(key), line)


def _refuse(key: Any, line: int) -> None:
    # Python internals (`__class__`, `mro`, `__globals__`…) are refused loudly, not reported as missing
    if isinstance(key, str) and (key.startswith("_") or key in _PYTHON_INTERNALS):
        raise Forbidden(f"Access to `{key}` is not allowed in expressions", line)


_PYTHON_INTERNALS = frozenset({"mro", "func_globals", "f_globals", "gi_frame", "gi_code", "cr_frame",
                               "f_back", "f_builtins", "f_locals", "tb_frame", "format", "format_map"})


# ------------------------------------------------------------------------------------------- coalescing

def coalesce(left: Callable[[], Any], right: Callable[[], Any], null_too: bool) -> Any:
    """`a ?? b` (null_too) and `a ??? b`: the right side when the left is missing (or null for `??`)."""
    try:
        value = left()
    except Missing:
        return right()
    if value is None and null_too:
        return right()
    return value


def soft(thunk: Callable[[], Any]) -> Any:
    """Evaluate for `default` and `is defined`: a missing attribute reads as null."""
    try:
        return thunk()
    except Missing:
        return None


# ------------------------------------------------------------------------------------------- booleans

def to_bool(value: Any, what: str = "if") -> bool:
    """Pebble's boolean coercion in `if`, `and`, `or`, `not`: booleans, numbers (≠ 0), strings (non-empty)."""
    if value is True or value is False:
        return value
    if value is None:
        if what == "not":
            raise RenderError("null value given to not() and strict variables is set to true")
        if what in ("and", "or"):
            raise RenderError(f"null value used in {what} operator and strict variables is set to true")
        raise RenderError("null value given to if statement and strict variables is set to true")
    if isinstance(value, str):
        return value != ""
    if isinstance(value, (int, float, Decimal)):
        return value != 0
    raise RenderError(
        f'Unsupported value type {type_name(value)}. Expected Boolean, String, Number in "{what}" statement')


def ternary_test(value: Any) -> bool:
    """The condition of `c ? a : b`: null is false; other values as in `if`."""
    if value is None:
        return False
    if value is True or value is False:
        return value
    if isinstance(value, str):
        return value != ""
    if isinstance(value, (int, float, Decimal)):
        return value != 0
    return True


def bool_and(left: Any, right: Callable[[], Any]) -> bool:
    return to_bool(left, "and") and to_bool(right(), "and")


def bool_or(left: Any, right: Callable[[], Any]) -> bool:
    return to_bool(left, "or") or to_bool(right(), "or")


def bool_not(value: Any) -> bool:
    return not to_bool(value, "not")


# ------------------------------------------------------------------------------------------- numbers

def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)


_OPERATION = {"+": "ADD", "-": "SUBTRACT", "*": "MULTIPLICATION", "/": "DIVISION", "%": "MODULUS"}


def _arith(a: Any, b: Any, op: str) -> Any:
    if not (_is_number(a) and _is_number(b)):
        raise RenderError(f"invalid operands for mathematical operation [{_OPERATION[op]}]")
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        # Pebble widens both sides with BigDecimal.valueOf(x.doubleValue())
        return _decimal_op(Decimal(repr(float(a))), Decimal(repr(float(b))), op)
    if isinstance(a, float) and not isinstance(a, JFloat) or isinstance(b, float) and not isinstance(b, JFloat):
        return _double_op(float(a), float(b), op)
    if isinstance(a, JFloat) or isinstance(b, JFloat):
        return JFloat(_double_op(to_float32(float(a)), to_float32(float(b)), op))
    return _long_op(wrap_long(a), wrap_long(b), op)


def _double_op(a: float, b: float, op: str) -> float:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            if a == 0 or a != a:
                return math.nan
            return math.copysign(math.inf, a) * math.copysign(1.0, b)
        return a / b
    if b == 0:
        return math.nan
    return math.fmod(a, b)


def _long_op(a: int, b: int, op: str) -> int:
    if op == "+":
        return wrap_long(a + b)
    if op == "-":
        return wrap_long(a - b)
    if op == "*":
        return wrap_long(a * b)
    if b == 0:
        raise RenderError("/ by zero")
    q = abs(a) // abs(b)
    if (a < 0) != (b < 0):
        q = -q
    if op == "/":
        return wrap_long(q)
    return wrap_long(a - b * q)


def _decimal_op(a: Decimal, b: Decimal, op: str) -> Decimal:
    try:
        with localcontext() as ctx:
            ctx.prec = 34  # MathContext.DECIMAL128
            if op == "+":
                return a + b
            if op == "-":
                return a - b
            if op == "*":
                return a * b
            if op == "/":
                return a / b
            return a % b
    except (DecimalException, ZeroDivisionError):
        raise RenderError("Division by zero" if op in "/%" else "Invalid decimal operation") from None


def _max_output(context: Any) -> int:
    renderer = getattr(getattr(context, "environment", None), "kestra_renderer", None)
    return renderer.limits.max_output if renderer is not None else DEFAULT_LIMIT


def op_add(a: Any, b: Any, context: Any = None) -> Any:
    """Pebble `+`: string concatenation if a side is a string, list append, else Java arithmetic."""
    if isinstance(a, str) or isinstance(b, str):
        limit = _max_output(context)
        text = java_str(a, limit) + java_str(b, limit)
        if len(text) > limit:
            raise LimitExceeded(f"Rendering limit exceeded: a string longer than {limit} characters")
        return text
    if isinstance(a, list):
        result = list(a)
        if isinstance(b, (list, tuple, set)):
            result.extend(b)
        else:
            result.append(b)
        if len(result) > 1024 and context is not None:
            budget_of(context).check_collection(len(result))
        return result
    return _arith(a, b, "+")


def op_sub(a: Any, b: Any) -> Any:
    """Pebble `-`: list removal, else Java arithmetic."""
    if isinstance(a, list):
        result = list(a)
        if isinstance(b, (list, tuple, set)):
            return [x for x in result if not any(java_equals(x, y) for y in b)]
        for i, x in enumerate(result):
            if java_equals(x, b):
                del result[i]
                break
        return result
    return _arith(a, b, "-")


def op_mul(a: Any, b: Any) -> Any:
    return _arith(a, b, "*")


def op_div(a: Any, b: Any) -> Any:
    return _arith(a, b, "/")


def op_mod(a: Any, b: Any) -> Any:
    return _arith(a, b, "%")


def op_neg(a: Any) -> Any:
    return _arith(-1, a, "*")


def op_pos(a: Any) -> Any:
    return _arith(1, a, "*")


# ------------------------------------------------------------------------------------------- comparisons

_MAX_COMPARED = 1_000_000


def java_equals(a: Any, b: Any) -> bool:
    """Java's Object.equals between template values (numbers of different kinds differ)."""
    if a is b:
        return True
    return _equals(a, b, [0])


def _equals(a: Any, b: Any, visited: list[int]) -> bool:
    if a is b:
        return True
    if a is None or b is None:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b if isinstance(a, bool) and isinstance(b, bool) else False
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if isinstance(a, float) and isinstance(b, float):
        return a == b
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    visited[0] += 1
    if visited[0] > _MAX_COMPARED:
        raise LimitExceeded(f"Rendering limit exceeded: comparing values of more than {_MAX_COMPARED} elements")
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equals(x, y, visited) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equals(v, b[k], visited) for k, v in a.items())
    if _is_number(a) or _is_number(b):
        return False
    return bool(a == b)


def op_eq(a: Any, b: Any) -> bool:
    """Pebble `==` / `equals`: numbers by value, anything else with Java equals."""
    if _is_number(a) and _is_number(b):
        return float(a) == float(b)
    return java_equals(a, b)


def op_ne(a: Any, b: Any) -> bool:
    return not op_eq(a, b)


_COMPARISON = {"<": "LESS_THAN", ">": "GREATER_THAN", "<=": "LESS_THAN_EQUALS", ">=": "GREATER_THAN_EQUALS"}


def _compare(a: Any, b: Any, op: str) -> bool:
    if isinstance(a, str) and isinstance(b, str):  # Kestra 1.x compares strings lexicographically
        pass
    elif a is None or b is None:
        return False
    elif not (_is_number(a) and _is_number(b)):
        raise RenderError(f"invalid operands for mathematical comparison [{_COMPARISON[op]}]")
    else:
        a, b = float(a), float(b)
    if op == "<":
        return a < b
    if op == ">":
        return a > b
    if op == "<=":
        return a <= b
    return a >= b


def op_lt(a: Any, b: Any) -> bool:
    return _compare(a, b, "<")


def op_gt(a: Any, b: Any) -> bool:
    return _compare(a, b, ">")


def op_le(a: Any, b: Any) -> bool:
    return _compare(a, b, "<=")


def op_ge(a: Any, b: Any) -> bool:
    return _compare(a, b, ">=")


def op_contains(a: Any, b: Any) -> bool:
    """Pebble `contains`: substring, list element (or all elements of a list), map key."""
    if a is None:
        return False
    if isinstance(a, str):
        return java_str(b) in a
    if isinstance(a, dict):
        return any(java_equals(k, b) for k in a)
    if isinstance(a, (list, tuple, set)):
        if isinstance(b, (list, tuple, set)):
            return all(any(java_equals(x, y) for x in a) for y in b)
        return any(java_equals(x, b) for x in a)
    raise RenderError(
        f"Contains operator can only be used on Collections, Maps and arrays. Actual type was: {type_name(a)}")


def op_isin(a: Any, b: Any) -> bool:
    """Kestra 1.x `isIn`: the left value's text is among the right list's items (or a map's keys/values)."""
    if a is None or b is None:
        return False
    text = java_str(a)
    if isinstance(b, dict):
        return any(java_str(k) == text or java_str(v) == text for k, v in b.items())
    if isinstance(b, (list, tuple, set)):
        return any(java_str(x) == text for x in b)
    return False


def op_notin(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    return not op_isin(a, b)


def op_concat(a: Any, b: Any, context: Any = None) -> str:
    """Pebble `~`: toString() of both sides, null as nothing."""
    limit = _max_output(context)
    text = ("" if a is None else java_str(a, limit)) + ("" if b is None else java_str(b, limit))
    if len(text) > limit:
        raise LimitExceeded(f"Rendering limit exceeded: a string longer than {limit} characters")
    return text


def make_range(start: Any, end: Any, step: Any = None, budget: Budget | None = None) -> list[Any]:
    """Pebble's range(start, end, increment): inclusive of `end`; numbers or single characters."""
    increment = 1 if step is None else step
    if not _is_number(increment):
        raise RenderError(f"The increment of the range function must be a number {java_str(increment)}")
    inc = int(increment)
    if inc == 0:
        raise RenderError("The increment of the range function must be different than 0")
    if _is_number(start) and _is_number(end):
        lo, hi = int(start), int(end)
        size = max(0, (hi - lo) // inc + 1) if (hi - lo) * inc >= 0 else 0
        limit = budget.limits.max_collection if budget is not None else 1_000_000
        if abs(hi - lo) // abs(inc) + 1 > limit:
            raise LimitExceeded(
                f"The range function cannot produce more than {limit} elements, but this call would produce "
                f"{abs(hi - lo) // abs(inc) + 1}.")
        return list(range(lo, hi + (1 if inc > 0 else -1), inc)) if size else []
    if isinstance(start, str) and isinstance(end, str):
        if len(start) != 1 or len(end) != 1:
            raise RenderError("Arguments of range function must be of type Number or String with a length of 1")
        lo, hi = ord(start), ord(end)
        return [chr(c) for c in range(lo, hi + (1 if inc > 0 else -1), inc)]
    raise RenderError("Arguments of range function must be of type Number or String with a length of 1")


def make_map(pairs: Iterable[tuple[Any, Any]]) -> dict[Any, Any]:
    """A `{k: v}` literal: a java.util.HashMap, so it prints in HashMap order."""
    items = list(pairs)
    return hash_ordered(items, literal_map_capacity(len(items)))


# ------------------------------------------------------------------------------------------- scopes

SCOPES = "\x00kestra_scopes"  # the render's scope chain, in the Jinja context's vars


class Scope:
    """One level of Pebble's ScopeChain; a `local` scope (a macro's) hides everything below it."""

    __slots__ = ("vars", "local")

    def __init__(self, local: bool = False) -> None:
        self.vars: dict[str, Any] = {}
        self.local = local


def scopes_of(context: Any) -> list[Scope]:
    """The scope chain of a render (created on the first `set`, loop or macro): the template scope first."""
    scopes = context.vars.get(SCOPES)
    if scopes is None:
        scopes = context.vars[SCOPES] = [Scope()]
    return scopes


def read_variable(context: Any, name: str, line: int) -> Any:
    """A variable: the nearest scope holding it (not past a macro's), then the context variables."""
    scopes = context.vars.get(SCOPES)
    if scopes is not None:
        for scope in reversed(scopes):
            values = scope.vars
            if name in values:
                return values[name]
            if scope.local:
                raise Missing(name, line)
    try:
        return context.parent[name]
    except KeyError:
        if name == "_context":
            from .functions import context_variables
            return context_variables(context)
        raise Missing(name, line) from None


def set_variable(context: Any, name: str, value: Any) -> None:
    """`{% set %}`: Pebble's ScopeChain.set — the scope already holding the name, else the innermost."""
    scopes = scopes_of(context)
    for scope in reversed(scopes):
        if scope.local or name in scope.vars:
            scope.vars[name] = value
            return
    if name in context.parent:  # a context variable is overridden for the rest of the template
        scopes[0].vars[name] = value
    else:
        scopes[-1].vars[name] = value


def bind_parameters(context: Any, names: list[str], values: tuple[Any, ...]) -> None:
    """A macro's arguments become its local scope (pushed by `call_macro`)."""
    scopes = scopes_of(context)
    scopes[-1].vars.update(zip(names, values))


class LoopVariables:
    """Pebble's `loop`: 0-based `index`, `revindex`, `length`, `first`, `last`."""

    __slots__ = ("index", "length")

    def __init__(self, index: int, length: int) -> None:
        self.index = index
        self.length = length

    @property
    def revindex(self) -> int:
        return self.length - self.index - 1

    @property
    def first(self) -> bool:
        return self.index == 0

    @property
    def last(self) -> bool:
        return self.index == self.length - 1

    def __repr__(self) -> str:
        return (f"{{last={java_str(self.last)}, length={self.length}, index={self.index}, "
                f"revindex={self.revindex}, first={java_str(self.first)}}}")


def loop(context: Any, value: Any, var: str, line: int) -> Iterator[Any]:
    """What `{% for var in value %}` iterates: lists, map entries; null is empty; each iteration budgeted."""
    if value is None:
        return iter(())
    if isinstance(value, dict):
        items: list[Any] = [MapEntry(k, v) for k, v in value.items()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
    else:
        raise RenderError(f"Not an iterable object. Value = [{java_str(value)}]", line)
    if not items:
        return iter(())
    return _loop(context, items, var)


def _loop(context: Any, items: list[Any], var: str) -> Iterator[Any]:
    scopes = scopes_of(context)
    scope = Scope()
    scopes.append(scope)  # one scope for the whole loop, as Pebble: a `set` of a new name lives in it
    budget = budget_of(context)
    values = scope.vars
    length = len(items)
    for index, item in enumerate(items):
        budget.tick()
        values["loop"] = LoopVariables(index, length)
        values[var] = item
        yield item
    if scopes and scopes[-1] is scope:
        scopes.pop()


# ------------------------------------------------------------------------------------------- calls

def call_macro(context: Any, target: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
               line: int, isolated: bool = True) -> Any:
    """Call a `{% macro %}` (the only callable values templates can reach) in its own local scope."""
    if not isinstance(target, Macro):
        raise RenderError(f"Function or Macro [{name}] does not exist.", line)
    budget = budget_of(context)
    scopes = scopes_of(context)
    depth = len(scopes)
    budget.depth += 1
    try:
        if budget.depth > budget.limits.max_depth:
            raise LimitExceeded(f"Rendering limit exceeded: macros nested more than {budget.limits.max_depth} deep")
        budget.check_time()
        if isolated:
            scopes.append(Scope(local=True))
        try:
            return target(*args, **kwargs)
        except TypeError as exc:
            raise RenderError(f"Wrong arguments for macro [{name}]: {exc}", line) from None
    finally:
        budget.depth -= 1
        del scopes[depth:]  # also drops scopes of loops a failing body left open


def check_text(budget: Budget, text: str, what: str = "a string") -> str:
    """Refuse a string past the output limit (filters that can grow their input call this)."""
    if len(text) > budget.limits.max_output:
        budget.check_size(len(text), what)
    return text


__all__ = [
    "BUDGET", "RUNTIME", "Budget", "Forbidden", "LimitExceeded", "Limits", "Missing", "MissingValue", "OutputTooLarge",
    "RenderError", "SCOPES", "LoopVariables", "budget_of", "call_macro", "check_text", "coalesce", "get_attribute",
    "loop", "read_variable", "set_variable", "bind_parameters",
    "java_equals", "make_map", "make_range", "op_add", "op_concat", "op_contains", "op_div",
    "op_eq", "op_ge", "op_gt", "op_isin", "op_le", "op_lt", "op_mod", "op_mul", "op_ne", "op_neg",
    "op_notin", "op_pos", "op_sub", "soft", "ternary_test", "to_bool",
]
