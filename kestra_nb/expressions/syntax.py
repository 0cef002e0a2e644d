"""Pebble template syntax, parsed into a Jinja2 node tree (spec §6.6).

This module owns the grammar: Pebble's lexer (delimiters, `-` whitespace control, comments, `verbatim`
and multi-line `raw` blocks, strings with `#{}` interpolation, Pebble's operator table) and its
precedence-climbing expression parser, including Kestra's `??`/`???` (120), `isIn`/`notIn`, the ternary
`?:`, `..` ranges, `contains`/`equals`, `is [not] test`, and the tags Kestra keeps: `if`/`elseif`/`else`,
`for`/`else`, `set`, `macro`, `filter`, `block`.

Templates are parsed once into Jinja2 nodes that Jinja2's code generator compiles: statements become
Jinja2's own nodes (If, For, Assign, Macro, FilterBlock, Output); every expression node that differs from
Jinja2 (attribute access, operators, `??`, function calls, map literals…) is one of the `K*` nodes below,
compiled by `environment.KestraCodeGenerator` into calls of the Pebble runtime. Nothing here evaluates a
template; unknown filters, tests and functions fail when reached, as in Pebble.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes

from .filters import FILTERS

# ------------------------------------------------------------------------------------------- nodes


class _KNodeType(nodes.NodeType):
    """NodeType's field inheritance, for our own node classes.

    Jinja2 forbids new node types (NodeType.__new__ raises) because extensions are meant to reuse its
    nodes; Pebble's operators need lazy operands and helper calls no Jinja2 node expresses, and we own
    their code generation (environment.KestraCodeGenerator), so we build these classes ourselves.
    """

    def __new__(mcs, name: str, bases: tuple[type, ...], d: dict[str, Any]) -> Any:  # noqa: N804
        for attr in ("fields", "attributes"):
            storage: list[str] = list(getattr(bases[0], attr, ()))
            storage.extend(d.get(attr, ()))
            d[attr] = tuple(storage)
        d.setdefault("abstract", False)
        return type.__new__(mcs, name, bases, d)


class KNode(nodes.Expr, metaclass=_KNodeType):
    """Base of the Kestra expression nodes (compiled by KestraCodeGenerator)."""

    abstract = True


class KName(KNode):
    """A template variable, read through Pebble's scope chain (`Unable to find` when missing)."""

    fields = ("name", "line")


class KSet(KNode):
    """`{% set name = value %}`: Pebble's ScopeChain.set (updates the scope that already holds the name)."""

    fields = ("name", "value", "line")


class KLoop(KNode):
    """The iterable of a `{% for %}`: iterating it binds the loop variable and `loop` in a new scope."""

    fields = ("node", "var", "line")


class KParams(KNode):
    """First statement of a macro body: its parameters become the macro's local scope."""

    fields = ("names", "refs")


class KAttr(KNode):
    """`a.b` / `a[b]`: map key, list index or loop variable; `root` names a variable read directly."""

    fields = ("node", "arg", "root", "line")


class KBinary(KNode):
    """A Pebble binary operator compiled to a runtime helper (`op` is the helper suffix)."""

    fields = ("op", "left", "right", "line")


class KUnary(KNode):
    fields = ("op", "node", "line")


class KBool(KNode):
    """Pebble's boolean coercion for `if`, `and`, `or` (`what` names the construct in errors)."""

    fields = ("node", "what", "line")


class KAnd(KNode):
    fields = ("left", "right", "line")


class KOr(KNode):
    fields = ("left", "right", "line")


class KNot(KNode):
    fields = ("node", "line")


class KTernary(KNode):
    fields = ("test", "expr1", "expr2", "line")


class KCoalesce(KNode):
    """`a ?? b` (null_too) and `a ??? b`: the left side runs in a guard that swallows missing attributes."""

    fields = ("left", "right", "null_too", "line")


class KSoft(KNode):
    """A guarded value for `default` and `is defined`: a missing attribute reads as null."""

    fields = ("node", "line")


class KMap(KNode):
    fields = ("pairs", "line")


class KFunction(KNode):
    fields = ("name", "args", "kwargs", "line")


class KMacroCall(KNode):
    """A macro call; `isolated` macros get a local scope (blocks share the caller's)."""

    fields = ("ref", "name", "args", "kwargs", "line", "isolated")


class KFail(KNode):
    """Raise a render error when reached (unknown filter, test or function: Pebble fails at render time)."""

    fields = ("message", "line")


# ------------------------------------------------------------------------------------------- errors


class PebbleSyntaxError(Exception):
    """The template is not valid Pebble."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


# ------------------------------------------------------------------------------------------- lexer


@dataclass(slots=True)
class Token:
    kind: str
    value: str
    line: int


TEXT, PRINT_START, PRINT_END, EXEC_START, EXEC_END = "text", "{{", "}}", "{%", "%}"
NAME, NUMBER, LONG, STRING, OP, PUNCT, EOF = "name", "number", "long", "string", "op", "punct", "eof"
INTERP_START, INTERP_END = "#{", "#}"

UNARY = {"not": 500, "+": 500, "-": 500}
BINARY: dict[str, int] = {
    "or": 10, "and": 15, "is": 20, "is not": 20, "contains": 20,
    "==": 30, "equals": 30, "!=": 30, ">": 30, "<": 30, ">=": 30, "<=": 30, "isIn": 30, "notIn": 30,
    "+": 40, "-": 40, "*": 60, "/": 60, "%": 60, "|": 100, "~": 110, "..": 120, "??": 120, "???": 120,
}
_OPERATORS = sorted(set(UNARY) | set(BINARY), key=len, reverse=True)
_OPERATOR_RE = re.compile("|".join(re.escape(op) + ("(?![A-Za-z0-9_])" if op[-1].isalpha() else "")
                                   for op in _OPERATORS))
_NAME_RE = re.compile(r"[^\W\d]\w*")
_LONG_RE = re.compile(r"[0-9]+L")
_NUMBER_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_SINGLE_RE = re.compile(r"'((?:[^'\\]|\\.)*)'", re.DOTALL)
_START_RE = re.compile(r"\{\{|\{%|\{#")
_VERBATIM_START = re.compile(r"(-)?\s*(verbatim|raw)\s*(-)?%\}")
_VERBATIM_END = {"verbatim": re.compile(r"\{%(-)?\s*endverbatim\s*(-)?%\}"),
                 "raw": re.compile(r"\{%(-)?\s*endraw\s*(-)?%\}")}
_PUNCTUATION = "()[]{}?:.,|="


class Lexer:
    """Pebble's LexerImpl: template text to tokens, with line numbers."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.pos = 0
        self.line = 1
        self.tokens: list[Token] = []
        self.trim_next = False

    def error(self, message: str) -> PebbleSyntaxError:
        return PebbleSyntaxError(message, self.line)

    def advance(self, n: int) -> None:
        self.line += self.src.count("\n", self.pos, self.pos + n)
        self.pos += n

    def push_text(self, text: str) -> Token | None:
        if self.trim_next:
            text = text.lstrip()
            self.trim_next = False
        if not text:
            return None
        token = Token(TEXT, text, self.line)
        self.tokens.append(token)
        return token

    def tokenize(self) -> list[Token]:
        src = self.src
        while self.pos < len(src):
            m = _START_RE.search(src, self.pos)
            if m is None:
                text_token = self.push_text(src[self.pos:])
                self.advance(len(src) - self.pos)
                break
            text_line = self.line
            text_token = self.push_text(src[self.pos:m.start()])
            if text_token is not None:
                text_token.line = text_line
            self.advance(m.end() - self.pos)
            delimiter = m.group()
            if self.pos < len(src) and src[self.pos] == "-":
                if text_token is not None:
                    text_token.value = text_token.value.rstrip()
                    if not text_token.value:
                        self.tokens.remove(text_token)
                self.advance(1)
            if delimiter == "{#":
                end = src.find("#}", self.pos)
                if end < 0:
                    raise self.error("Unclosed comment.")
                if end > self.pos and src[end - 1] == "-":
                    self.trim_next = True
                self.advance(end + 2 - self.pos)
            elif delimiter == "{%":
                vm = _VERBATIM_START.match(src, self.pos)
                if vm is not None:
                    self.verbatim(vm)
                else:
                    self.tokens.append(Token(EXEC_START, "{%", self.line))
                    self.expression("%}")
            else:
                self.tokens.append(Token(PRINT_START, "{{", self.line))
                self.expression("}}")
        self.tokens.append(Token(EOF, "", self.line))
        return self.tokens

    def verbatim(self, start: re.Match[str]) -> None:
        kind = start.group(2)
        self.advance(start.end() - self.pos)
        end = _VERBATIM_END[kind].search(self.src, self.pos)
        if end is None:
            raise self.error(f"Unclosed {kind} tag.")
        text = self.src[self.pos:end.start()]
        if start.group(3):
            text = text.lstrip()
        if end.group(1):
            text = text.rstrip()
        line = self.line
        self.advance(end.end() - self.pos)
        if text:
            self.tokens.append(Token(TEXT, text, line))
        if end.group(2):
            self.trim_next = True

    def expression(self, close: str) -> None:
        """Tokens up to the closing delimiter (brackets must be balanced before it counts)."""
        src = self.src
        brackets: list[str] = []
        end_kind = EXEC_END if close == "%}" else PRINT_END
        while True:
            self.skip_space()
            if self.pos >= len(src):
                raise self.error(f'Unexpected end of template, expected "{close}"' if not brackets
                                 else f'Unclosed "{brackets[-1]}"')
            if not brackets:
                if src.startswith("-" + close, self.pos):
                    self.trim_next = True
                    self.tokens.append(Token(end_kind, close, self.line))
                    self.advance(len(close) + 1)
                    return
                if src.startswith(close, self.pos):
                    self.tokens.append(Token(end_kind, close, self.line))
                    self.advance(len(close))
                    return
            self.one_token(brackets)

    def skip_space(self) -> None:
        src, n = self.src, len(self.src)
        start = self.pos
        while self.pos < n and src[self.pos] in " \t\r\n\f\v":
            self.pos += 1
        if self.pos != start:
            self.line += src.count("\n", start, self.pos)

    def one_token(self, brackets: list[str]) -> None:
        src, pos, line = self.src, self.pos, self.line
        m = _OPERATOR_RE.match(src, pos)
        if m is not None:
            self.tokens.append(Token(OP, m.group(), line))
            self.advance(m.end() - pos)
            return
        m = _NAME_RE.match(src, pos)
        if m is not None:
            self.tokens.append(Token(NAME, m.group(), line))
            self.advance(m.end() - pos)
            return
        m = _LONG_RE.match(src, pos)
        if m is not None:
            self.tokens.append(Token(LONG, m.group()[:-1], line))
            self.advance(m.end() - pos)
            return
        m = _NUMBER_RE.match(src, pos)
        if m is not None:
            self.tokens.append(Token(NUMBER, m.group(), line))
            self.advance(m.end() - pos)
            return
        c = src[pos]
        if c in _PUNCTUATION:
            if c in "([{":
                brackets.append(c)
            elif c in ")]}":
                if not brackets:
                    raise self.error(f'Unexpected "{c}"')
                opening = brackets.pop()
                expected = {"(": ")", "[": "]", "{": "}"}[opening]
                if expected != c:
                    raise self.error(f'Unclosed "{expected}"')
            self.tokens.append(Token(PUNCT, c, line))
            self.advance(1)
            return
        if c == "'":
            m = _SINGLE_RE.match(src, pos)
            if m is None:
                raise self.error('Unclosed "\'"')
            self.tokens.append(Token(STRING, m.group(1).replace("\\'", "'"), line))
            self.advance(m.end() - pos)
            return
        if c == '"':
            self.double_quoted()
            return
        raise self.error(f"Unexpected character [{c}]")

    def double_quoted(self) -> None:
        """A double-quoted string; `#{expr}` interpolations become tokens between string parts."""
        src = self.src
        self.advance(1)
        part: list[str] = []
        line = self.line
        while True:
            if self.pos >= len(src):
                raise self.error('Unclosed """')
            c = src[self.pos]
            if c == "\\" and self.pos + 1 < len(src):
                nxt = src[self.pos + 1]
                part.append('"' if nxt == '"' else c + nxt)
                self.advance(2)
            elif c == '"':
                self.tokens.append(Token(STRING, "".join(part), line))
                self.advance(1)
                return
            elif c == "#" and src.startswith("#{", self.pos):
                self.tokens.append(Token(STRING, "".join(part), line))
                part = []
                self.tokens.append(Token(INTERP_START, "#{", self.line))
                self.advance(2)
                brackets: list[str] = []
                while True:
                    self.skip_space()
                    if self.pos >= len(src):
                        raise self.error('Unclosed "#{"')
                    if not brackets and src[self.pos] == "}":
                        self.tokens.append(Token(INTERP_END, "}", self.line))
                        self.advance(1)
                        break
                    self.one_token(brackets)
                line = self.line
            else:
                part.append(c)
                self.advance(1)


# ------------------------------------------------------------------------------------------- parser

_FUNCTION_NAMES: frozenset[str] = frozenset()  # filled by functions.py (no import cycle)
_TEST_NAMES: frozenset[str] = frozenset()
_RESERVED = {"true": True, "TRUE": True, "false": False, "FALSE": False, "null": None, "NULL": None,
             "none": None, "NONE": None}
_BINARY_HELPERS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "%": "mod", "==": "eq", "equals": "eq",
                   "!=": "ne", "<": "lt", ">": "gt", "<=": "le", ">=": "ge", "contains": "contains",
                   "isIn": "isin", "notIn": "notin", "~": "concat", "..": "range"}


def register_callables(functions: set[str] | frozenset[str], tests: set[str] | frozenset[str]) -> None:
    """Tell the parser which function and test names exist (functions.py calls this at import)."""
    global _FUNCTION_NAMES, _TEST_NAMES
    _FUNCTION_NAMES = frozenset(functions)
    _TEST_NAMES = frozenset(tests)


RESULT_NAME = "__kestra_result"


class Parser:
    """Pebble's parser, producing Jinja2 nodes."""

    def __init__(self, source: str) -> None:
        if not _FUNCTION_NAMES:
            from . import functions  # noqa: F401 - registers the function and test names
        self.tokens = Lexer(source).tokenize()
        self.i = 0
        self.macros: list[nodes.Macro] = []  # Pebble registers every macro at parse time, wherever it is

    # ---- token helpers
    @property
    def cur(self) -> Token:
        return self.tokens[self.i]

    def peek(self, n: int = 1) -> Token:
        return self.tokens[min(self.i + n, len(self.tokens) - 1)]

    def next(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def test(self, kind: str, value: str | None = None) -> bool:
        token = self.cur
        return token.kind == kind and (value is None or token.value == value)

    def expect(self, kind: str, value: str | None = None) -> Token:
        token = self.cur
        if token.kind != kind or (value is not None and token.value != value):
            raise PebbleSyntaxError(
                f'Unexpected token "{token.kind.upper() if token.kind != EOF else "EOF"}" of value '
                f'"{token.value}"; expected {value or kind}', token.line)
        self.i += 1
        return token

    # ---- template
    def parse_template(self) -> nodes.Template:
        body = self.parse_body(())
        # macros are hoisted: callable above (and outside) the place they are defined, as in Pebble
        return nodes.Template([*self.macros, *body], lineno=1)

    def parse_single_expression(self) -> nodes.Expr | None:
        """The expression of a template that is exactly one `{{ expr }}` (whitespace aside), else None."""
        start = self.i
        while self.test(TEXT) and not self.cur.value.strip():
            self.next()
        if not self.test(PRINT_START):
            return None
        self.next()
        expr = self.parse_expression()
        if not self.test(PRINT_END):
            return None
        self.next()
        while self.test(TEXT) and not self.cur.value.strip():
            self.next()
        if not self.test(EOF):
            self.i = start
            return None
        return expr

    def parse_body(self, end_tags: tuple[str, ...]) -> list[nodes.Node]:
        body: list[nodes.Node] = []
        while True:
            token = self.cur
            if token.kind == EOF:
                if end_tags:
                    raise PebbleSyntaxError(
                        f"Unexpected end of template. Pebble was looking for the following tags: "
                        f"[{', '.join(end_tags)}]", token.line)
                return body
            if token.kind == TEXT:
                self.next()
                body.append(nodes.Output([nodes.TemplateData(token.value, lineno=token.line)], lineno=token.line))
            elif token.kind == PRINT_START:
                self.next()
                expr = self.parse_expression()
                self.expect(PRINT_END)
                body.append(nodes.Output([expr], lineno=token.line))
            elif token.kind == EXEC_START:
                name_token = self.peek()
                if name_token.kind == NAME and name_token.value in end_tags:
                    return body
                self.next()
                body.extend(self.parse_tag())
            else:
                raise PebbleSyntaxError(f'Unexpected token "{token.value}"', token.line)

    def tag_name(self) -> Token:
        token = self.cur
        if token.kind != NAME:
            raise PebbleSyntaxError("A block must start with a tag name.", token.line)
        return self.next()

    def end_tag(self, name: str) -> None:
        self.expect(EXEC_START)
        self.expect(NAME, name)
        while not self.test(EXEC_END):  # Pebble allows `{% endblock name %}`
            if self.test(EOF):
                break
            self.next()
        self.expect(EXEC_END)

    def parse_tag(self) -> list[nodes.Node]:
        token = self.tag_name()
        name, line = token.value, token.line
        if name == "if":
            return [self.parse_if(line)]
        if name == "for":
            return self.parse_for(line)
        if name == "set":
            var = self.new_variable_name()
            self.expect(PUNCT, "=")
            value = self.parse_expression()
            self.expect(EXEC_END)
            return [nodes.ExprStmt(KSet(var, value, line, lineno=line), lineno=line)]
        if name == "macro":
            self.macros.append(self.parse_macro(line))
            return []
        if name == "filter":
            return [self.parse_filter_block(line)]
        if name == "block":
            return self.parse_block(line)
        # Kestra removes autoescape, extends, embed, flush, import, include, parallel, cache and from
        raise PebbleSyntaxError(f'Unexpected tag name "{name}"', line)

    def parse_if(self, line: int) -> nodes.If:
        test = self.parse_expression()
        self.expect(EXEC_END)
        body = self.parse_body(("elseif", "else", "endif"))
        root = node = nodes.If(KBool(test, "if", line, lineno=line), body, [], [], lineno=line)
        while True:
            self.expect(EXEC_START)
            tag = self.tag_name()
            if tag.value == "elseif":
                cond = self.parse_expression()
                self.expect(EXEC_END)
                branch_body = self.parse_body(("elseif", "else", "endif"))
                root.elif_.append(nodes.If(KBool(cond, "if", tag.line, lineno=tag.line), branch_body, [], [],
                                           lineno=tag.line))
            elif tag.value == "else":
                self.expect(EXEC_END)
                root.else_ = self.parse_body(("endif",))
            else:
                self.expect(EXEC_END)
                return node

    def parse_for(self, line: int) -> list[nodes.Node]:
        var = self.new_variable_name()
        self.expect(NAME, "in")
        iterable = self.parse_expression()
        self.expect(EXEC_END)
        body = self.parse_body(("else", "endfor"))
        else_: list[nodes.Node] = []
        self.expect(EXEC_START)
        tag = self.tag_name()
        self.expect(EXEC_END)
        if tag.value == "else":
            else_ = self.parse_body(("endfor",))
            self.end_tag("endfor")
        target = nodes.Name("__kestra_item", "store", lineno=line)
        if not else_:
            return [nodes.For(target, KLoop(iterable, var, line, lineno=line), body, [], None, False, lineno=line)]
        # Pebble renders nothing at all (not even `else`) for a null iterable: evaluate it once, then decide
        temp = f"__kestra_for_{line}_{self.i}"
        loop = nodes.For(target, KLoop(nodes.Name(temp, "load", lineno=line), var, line, lineno=line), body, else_,
                         None, False, lineno=line)
        check = nodes.Test(nodes.Name(temp, "load", lineno=line), "null", [], [], None, None, lineno=line)
        return [nodes.Assign(nodes.Name(temp, "store", lineno=line), iterable, lineno=line),
                nodes.If(nodes.Not(check, lineno=line), [loop], [], [], lineno=line)]

    def parse_macro(self, line: int) -> nodes.Macro:
        name = self.new_variable_name()
        self.expect(PUNCT, "(")
        params: list[nodes.Name] = []
        defaults: list[nodes.Expr] = []
        while not self.test(PUNCT, ")"):
            if params:
                self.expect(PUNCT, ",")
            param = self.new_variable_name()
            params.append(nodes.Name(param, "param", lineno=line))
            if self.test(PUNCT, "="):
                self.next()
                defaults.append(self.parse_expression())
            else:
                defaults.append(nodes.Const(None, lineno=line))  # Pebble passes null for a missing argument
        self.expect(PUNCT, ")")
        self.expect(EXEC_END)
        body = self.parse_body(("endmacro",))
        self.end_tag("endmacro")
        params_stmt = nodes.ExprStmt(KParams([p.name for p in params],
                                             [nodes.Name(p.name, "load", lineno=line) for p in params],
                                             lineno=line), lineno=line)
        return nodes.Macro(name, params, defaults, [params_stmt, *body], lineno=line)

    def parse_filter_block(self, line: int) -> nodes.FilterBlock:
        chain: nodes.Expr | None = None
        while True:
            chain = self.filter_invocation(chain, self.cur.line)
            if self.test(OP, "|"):
                self.next()
                continue
            break
        self.expect(EXEC_END)
        body = self.parse_body(("endfilter",))
        self.end_tag("endfilter")
        return nodes.FilterBlock(body, chain, lineno=line)

    def parse_block(self, line: int) -> list[nodes.Node]:
        token = self.next()
        if token.kind not in (NAME, STRING):
            raise PebbleSyntaxError("Expected a block name", token.line)
        self.expect(EXEC_END)
        body = self.parse_body(("endblock",))
        self.end_tag("endblock")
        macro_name = f"__block_{_safe_name(token.value)}"
        self.macros.append(nodes.Macro(macro_name, [], [], body, lineno=line))
        return [nodes.Output([KMacroCall(nodes.Name(macro_name, "load", lineno=line), token.value, [], [], line,
                                         False, lineno=line)], lineno=line)]

    def new_variable_name(self) -> str:
        token = self.expect(NAME)
        if token.value in ("true", "false", "null", "none"):
            raise PebbleSyntaxError(f"Can not assign a value to {token.value}", token.line)
        return token.value

    # ---- expressions
    def parse_expression(self, min_precedence: int = 0) -> nodes.Expr:
        token = self.cur
        line = token.line
        if token.kind == OP and token.value in UNARY:
            self.next()
            operand = self.parse_expression(UNARY[token.value])
            if token.value == "not":
                expr: nodes.Expr = KNot(operand, line, lineno=line)
            else:
                expr = KUnary("neg" if token.value == "-" else "pos", operand, line, lineno=line)
        elif token.kind == PUNCT and token.value == "(":
            self.next()
            expr = self.parse_expression()
            self.expect(PUNCT, ")")
            expr = self.parse_postfix(expr)
        elif token.kind == PUNCT and token.value == "[":
            expr = self.parse_postfix(self.parse_list())
        elif token.kind == PUNCT and token.value == "{":
            expr = self.parse_postfix(self.parse_map())
        else:
            expr = self.parse_primary()
        while True:
            token = self.cur
            if token.kind != OP or token.value not in BINARY:
                break
            precedence = BINARY[token.value]
            if precedence < min_precedence:
                break
            self.next()
            op, line = token.value, token.line
            if op == "|":
                expr = self.filter_invocation(expr, line)
            elif op in ("is", "is not"):
                expr = self.test_invocation(expr, op == "is not", line)
            else:
                right = self.parse_expression(precedence + 1)
                expr = self.binary(op, expr, right, line)
        if min_precedence == 0 and self.test(PUNCT, "?"):
            line = self.next().line
            when_true = self.parse_expression()
            self.expect(PUNCT, ":")
            when_false = self.parse_expression()
            expr = KTernary(expr, when_true, when_false, line, lineno=line)
        return expr

    def binary(self, op: str, left: nodes.Expr, right: nodes.Expr, line: int) -> nodes.Expr:
        if op == "and":
            return KAnd(left, right, line, lineno=line)
        if op == "or":
            return KOr(left, right, line, lineno=line)
        if op in ("??", "???"):
            return KCoalesce(left, right, op == "??", line, lineno=line)
        return KBinary(_BINARY_HELPERS[op], left, right, line, lineno=line)

    def parse_primary(self) -> nodes.Expr:
        token = self.cur
        line = token.line
        if token.kind == NAME:
            self.next()
            if token.value in _RESERVED:
                return self.parse_postfix(nodes.Const(_RESERVED[token.value], lineno=line))
            if self.test(PUNCT, "("):
                return self.parse_postfix(self.call(token.value, line))
            return self.parse_postfix(self.variable(token.value, line))
        if token.kind == LONG:
            self.next()
            return self.parse_postfix(nodes.Const(int(token.value), lineno=line))
        if token.kind == NUMBER:
            self.next()
            value: Any = float(token.value) if "." in token.value else int(token.value)
            return self.parse_postfix(nodes.Const(value, lineno=line))
        if token.kind in (STRING, INTERP_START):
            return self.parse_postfix(self.parse_string())
        raise PebbleSyntaxError(
            f'Unexpected token "{token.kind.upper() if token.kind != EOF else "EOF"}" of value "{token.value}"',
            line)

    def variable(self, name: str, line: int) -> nodes.Expr:
        return KName(name, line, lineno=line)

    def parse_string(self) -> nodes.Expr:
        parts: list[nodes.Expr] = []
        line = self.cur.line
        previous = None
        while True:
            if self.test(STRING) and previous != STRING:
                parts.append(nodes.Const(self.next().value, lineno=line))
                previous = STRING
            elif self.test(INTERP_START):
                self.next()
                parts.append(self.parse_expression())
                self.expect(INTERP_END)
                previous = INTERP_END
            else:
                break
        # empty literal parts vanish; a lone interpolation keeps its type ("#{1}" is the number 1)
        parts = [p for p in parts if not (isinstance(p, nodes.Const) and p.value == "")]
        if not parts:
            return nodes.Const("", lineno=line)
        expr = parts[0]
        for part in parts[1:]:
            expr = KBinary("concat", expr, part, line, lineno=line)
        return expr

    def parse_list(self) -> nodes.Expr:
        line = self.expect(PUNCT, "[").line
        items: list[nodes.Expr] = []
        while not self.test(PUNCT, "]"):
            if items:
                self.expect(PUNCT, ",")
            items.append(self.parse_expression())
        self.expect(PUNCT, "]")
        return nodes.List(items, lineno=line)

    def parse_map(self) -> nodes.Expr:
        line = self.expect(PUNCT, "{").line
        pairs: list[nodes.Pair] = []
        while not self.test(PUNCT, "}"):
            if pairs:
                self.expect(PUNCT, ",")
            key = self.parse_expression()
            self.expect(PUNCT, ":")
            value = self.parse_expression()
            pairs.append(nodes.Pair(key, value, lineno=line))
        self.expect(PUNCT, "}")
        return KMap(pairs, line, lineno=line)

    def parse_postfix(self, node: nodes.Expr) -> nodes.Expr:
        root = node.name if isinstance(node, KName) else None
        while True:
            if self.test(PUNCT, "."):
                self.next()
                token = self.expect(NAME)
                if self.test(PUNCT, "("):
                    raise PebbleSyntaxError(
                        f"Method calls are not supported in expressions: `{token.value}(…)` (use a filter or a "
                        f"function)", token.line)
                node = KAttr(node, nodes.Const(token.value, lineno=token.line), root, token.line, lineno=token.line)
            elif self.test(PUNCT, "["):
                line = self.next().line
                arg = self.parse_expression()
                self.expect(PUNCT, "]")
                node = KAttr(node, arg, root, line, lineno=line)
            elif self.test(PUNCT, "("):
                raise PebbleSyntaxError("Only functions and macros can be called", self.cur.line)
            else:
                return node
            root = None

    def arguments(self) -> tuple[list[nodes.Expr], list[tuple[str, nodes.Expr]]]:
        self.expect(PUNCT, "(")
        args: list[nodes.Expr] = []
        kwargs: list[tuple[str, nodes.Expr]] = []
        while not self.test(PUNCT, ")"):
            if args or kwargs:
                self.expect(PUNCT, ",")
            if self.test(NAME) and self.peek().kind == PUNCT and self.peek().value == "=":
                name = self.new_variable_name()
                self.expect(PUNCT, "=")
                kwargs.append((name, self.parse_expression()))
            else:
                if kwargs:
                    raise PebbleSyntaxError("Positional arguments must be declared before any named arguments.",
                                            self.cur.line)
                args.append(self.parse_expression())
        self.expect(PUNCT, ")")
        return args, kwargs

    def call(self, name: str, line: int) -> nodes.Expr:
        args, kwargs = self.arguments()
        if name == "block":
            if len(args) != 1 or not isinstance(args[0], nodes.Const) or not isinstance(args[0].value, str):
                raise PebbleSyntaxError("The block function expects the name of a block", line)
            macro = f"__block_{_safe_name(args[0].value)}"
            return KMacroCall(nodes.Name(macro, "load", lineno=line), args[0].value, [], [], line, False,
                              lineno=line)
        if name in _FUNCTION_NAMES:
            return KFunction(name, args, [nodes.Keyword(k, v, lineno=line) for k, v in kwargs], line, lineno=line)
        if name == "parent":
            raise PebbleSyntaxError("The parent() function needs template inheritance, which Kestra disables", line)
        return KMacroCall(nodes.Name(name, "load", lineno=line), name, args,
                          [nodes.Keyword(k, v, lineno=line) for k, v in kwargs], line, True, lineno=line)

    def filter_invocation(self, node: nodes.Expr | None, line: int) -> nodes.Expr:
        token = self.expect(NAME)
        name = token.value
        args: list[nodes.Expr] = []
        kwargs: list[tuple[str, nodes.Expr]] = []
        if self.test(PUNCT, "("):
            args, kwargs = self.arguments()
        if name not in FILTERS:
            return KFail(f"Filter [{name}] does not exist.", token.line, lineno=token.line)
        if name == "default" and node is not None:
            node = KSoft(node, token.line, lineno=token.line)
        return nodes.Filter(node, name, args, [nodes.Keyword(k, v, lineno=line) for k, v in kwargs], None, None,
                            lineno=token.line)

    def test_invocation(self, node: nodes.Expr, negated: bool, line: int) -> nodes.Expr:
        token = self.expect(NAME)
        name = token.value
        args: list[nodes.Expr] = []
        kwargs: list[tuple[str, nodes.Expr]] = []
        if self.test(PUNCT, "("):
            args, kwargs = self.arguments()
        if name not in _TEST_NAMES:
            return KFail(f"Test [{name}] does not exist.", token.line, lineno=token.line)
        if name == "defined":
            node = KSoft(node, token.line, lineno=token.line)
        test: nodes.Expr = nodes.Test(node, name, args, [nodes.Keyword(k, v, lineno=line) for k, v in kwargs],
                                      None, None, lineno=token.line)
        return nodes.Not(test, lineno=line) if negated else test


def _safe_name(name: str) -> str:
    return re.sub(r"\W", lambda m: f"_{ord(m.group()):x}_", name)


def parse(source: str) -> nodes.Template:
    """Parse a Pebble template into a Jinja2 Template node."""
    return Parser(source).parse_template()


def parse_expression_template(source: str) -> nodes.Template | None:
    """For typed rendering: a template that is one `{{ expr }}` becomes `__kestra_result = expr`, else None."""
    parser = Parser(source)
    expr = parser.parse_single_expression()
    if expr is None:
        return None
    return nodes.Template([nodes.Assign(nodes.Name(RESULT_NAME, "store", lineno=1), expr, lineno=1)], lineno=1)


__all__ = ["KNode", "Parser", "PebbleSyntaxError", "RESULT_NAME", "parse", "parse_expression_template",
           "register_callables"]
