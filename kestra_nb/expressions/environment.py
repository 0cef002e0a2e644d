"""The sandboxed Jinja2 environment Pebble templates compile into, and its code generator.

This module owns how the `K*` nodes of `syntax` become Python: each one is written as a call of a
runtime helper hung on the environment (`environment.kh_attr(...)`, `environment.kh_add(...)`), lazily
evaluated operands (`??`, `???`, `default`, `is defined`) as lambdas so missing attributes can be caught,
and variable reads as "the local, or fail with `Unable to find`". The environment keeps Jinja2's
sandbox as a second wall, but templates compiled here never produce a Jinja2 attribute access, method
call or Python operator on user values: the only filters and tests are Kestra's, there are no globals.
"""
from __future__ import annotations

from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.idtracking import VAR_LOAD_PARAMETER
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import pass_context

from . import runtime, syntax
from .filters import FILTERS
from .functions import TESTS, call_function
from .values import to_text


class KestraCodeGenerator(CodeGenerator):
    """Jinja2's code generator, taught the Kestra expression nodes."""

    def _helper(self, name: str, frame: Frame, *operands: nodes.Node, tail: str = "") -> None:
        self.write(f"environment.kh_{name}(")
        for i, operand in enumerate(operands):
            if i:
                self.write(", ")
            self.visit(operand, frame)
        self.write(tail + ")")

    def _lazy(self, node: nodes.Node, frame: Frame) -> None:
        self.write("(lambda: ")
        self.visit(node, frame)
        self.write(")")

    def _ref(self, name_node: nodes.Name, frame: Frame) -> tuple[str, bool]:
        """The Python local holding a Jinja2 name (a macro, a temporary), and whether it is always bound."""
        ref = frame.symbols.ref(name_node.name)
        load = frame.symbols.find_load(ref)
        always = load is not None and load[0] == VAR_LOAD_PARAMETER and not self.parameter_is_undeclared(ref)
        return ref, always

    def visit_KName(self, node: syntax.KName, frame: Frame) -> None:
        self.write(f"environment.kh_var(context, {node.name!r}, {node.line})")

    def visit_KSet(self, node: syntax.KSet, frame: Frame) -> None:
        self.write(f"environment.kh_set(context, {node.name!r}, ")
        self.visit(node.value, frame)
        self.write(")")

    def visit_KLoop(self, node: syntax.KLoop, frame: Frame) -> None:
        self.write("environment.kh_loop(context, ")
        self.visit(node.node, frame)
        self.write(f", {node.var!r}, {node.line})")

    def visit_KParams(self, node: syntax.KParams, frame: Frame) -> None:
        self.write(f"environment.kh_params(context, {list(node.names)!r}, (")
        for ref in node.refs:
            self.visit(ref, frame)
            self.write(", ")
        self.write("))")

    def visit_KAttr(self, node: syntax.KAttr, frame: Frame) -> None:
        self._helper("attr", frame, node.node, node.arg, tail=f", {node.root!r}, {node.line}")

    def visit_KBinary(self, node: syntax.KBinary, frame: Frame) -> None:
        # `+` and `~` build strings and lists: they get the context to apply the render's size limits
        self._helper(node.op, frame, node.left, node.right, tail=", context" if node.op in ("add", "concat") else "")

    def visit_KUnary(self, node: syntax.KUnary, frame: Frame) -> None:
        self._helper(node.op, frame, node.node)

    def visit_KBool(self, node: syntax.KBool, frame: Frame) -> None:
        self._helper("bool", frame, node.node, tail=f", {node.what!r}")

    def visit_KAnd(self, node: syntax.KAnd, frame: Frame) -> None:
        self.write("(environment.kh_bool(")
        self.visit(node.left, frame)
        self.write(", 'and') and environment.kh_bool(")
        self.visit(node.right, frame)
        self.write(", 'and'))")

    def visit_KOr(self, node: syntax.KOr, frame: Frame) -> None:
        self.write("(environment.kh_bool(")
        self.visit(node.left, frame)
        self.write(", 'or') or environment.kh_bool(")
        self.visit(node.right, frame)
        self.write(", 'or'))")

    def visit_KNot(self, node: syntax.KNot, frame: Frame) -> None:
        self.write("(not environment.kh_bool(")
        self.visit(node.node, frame)
        self.write(", 'not'))")

    def visit_KTernary(self, node: syntax.KTernary, frame: Frame) -> None:
        self.write("(")
        self.visit(node.expr1, frame)
        self.write(" if environment.kh_ternary(")
        self.visit(node.test, frame)
        self.write(") else ")
        self.visit(node.expr2, frame)
        self.write(")")

    def visit_KCoalesce(self, node: syntax.KCoalesce, frame: Frame) -> None:
        self.write("environment.kh_coalesce(")
        self._lazy(node.left, frame)
        self.write(", ")
        self._lazy(node.right, frame)
        self.write(f", {bool(node.null_too)!r})")

    def visit_KSoft(self, node: syntax.KSoft, frame: Frame) -> None:
        self.write("environment.kh_soft(")
        self._lazy(node.node, frame)
        self.write(")")

    def visit_KMap(self, node: syntax.KMap, frame: Frame) -> None:
        self.write("environment.kh_map((")
        for pair in node.pairs:
            self.write("(")
            self.visit(pair.key, frame)
            self.write(", ")
            self.visit(pair.value, frame)
            self.write("), ")
        self.write("))")

    def _call_arguments(self, args: list[nodes.Expr], kwargs: list[nodes.Keyword], frame: Frame) -> None:
        self.write("(")
        for arg in args:
            self.visit(arg, frame)
            self.write(", ")
        self.write("), {")
        for kw in kwargs:
            self.write(f"{kw.key!r}: ")
            self.visit(kw.value, frame)
            self.write(", ")
        self.write("}")

    def visit_KFunction(self, node: syntax.KFunction, frame: Frame) -> None:
        self.write(f"environment.kh_call(context, {node.name!r}, ")
        self._call_arguments(node.args, node.kwargs, frame)
        self.write(f", {node.line})")

    def visit_KMacroCall(self, node: syntax.KMacroCall, frame: Frame) -> None:
        ref, always = self._ref(node.ref, frame)
        target = ref if always else f"({ref} if {ref} is not missing else None)"
        self.write(f"environment.kh_macro(context, {target}, {node.name!r}, ")
        self._call_arguments(node.args, node.kwargs, frame)
        self.write(f", {node.line}, {bool(node.isolated)!r})")

    def visit_KFail(self, node: syntax.KFail, frame: Frame) -> None:
        self.write(f"environment.kh_fail({node.message!r}, {node.line})")


@pass_context
def _finalize(context: Any, value: Any) -> str:
    """What `{{ }}` prints: Kestra's string mode, within the renderer's output limit."""
    if type(value) is str:
        return value
    return to_text(value, context.environment.kestra_renderer.limits.max_output)


def _fail(message: str, line: int) -> Any:
    raise runtime.RenderError(message, line)


class KestraEnvironment(SandboxedEnvironment):
    """A sandboxed environment holding only Kestra's filters and tests, and the runtime helpers."""

    code_generator_class = KestraCodeGenerator

    def __init__(self) -> None:
        super().__init__(autoescape=False, finalize=_finalize, optimized=False, cache_size=0,
                         keep_trailing_newline=True, auto_reload=False)
        # Jinja2's builtin filters, tests and globals (range, dict, lipsum, cycler…) are not reachable
        self.filters = dict(FILTERS)
        self.tests = dict(TESTS)
        self.globals = {}
        self.kestra_renderer: Any = None
        helpers = {
            "var": runtime.read_variable, "set": runtime.set_variable, "loop": runtime.loop,
            "params": runtime.bind_parameters, "attr": runtime.get_attribute, "coalesce": runtime.coalesce,
            "soft": runtime.soft, "bool": runtime.to_bool, "ternary": runtime.ternary_test,
            "add": runtime.op_add, "sub": runtime.op_sub, "mul": runtime.op_mul, "div": runtime.op_div,
            "mod": runtime.op_mod, "neg": runtime.op_neg, "pos": runtime.op_pos, "eq": runtime.op_eq,
            "ne": runtime.op_ne, "lt": runtime.op_lt, "gt": runtime.op_gt, "le": runtime.op_le,
            "ge": runtime.op_ge, "contains": runtime.op_contains, "isin": runtime.op_isin,
            "notin": runtime.op_notin, "concat": runtime.op_concat, "range": _range_operator,
            "map": runtime.make_map, "call": call_function, "macro": runtime.call_macro, "fail": _fail,
        }
        for name, fn in helpers.items():
            setattr(self, f"kh_{name}", fn)

    def getattr(self, obj: Any, attribute: str) -> Any:  # pragma: no cover - never generated
        raise runtime.Forbidden(f"Access to `{attribute}` is not allowed in expressions")

    def getitem(self, obj: Any, argument: Any) -> Any:  # pragma: no cover - never generated
        raise runtime.Forbidden("Item access outside the Kestra runtime is not allowed")

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        raise runtime.Forbidden("Calling Python objects is not allowed in expressions")  # pragma: no cover


def _range_operator(start: Any, end: Any) -> list[Any]:
    return runtime.make_range(start, end)


__all__ = ["KestraCodeGenerator", "KestraEnvironment"]
