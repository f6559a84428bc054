"""A small, safe expression language for show-if conditions and calculated items (no Django).

An expression is parsed once into an AST of frozen dataclasses and evaluated by walking that
tree: nothing is ever handed to `eval`, `exec` or Python's own parser, so a definition can only
compute, never run code. Evaluation lives in outcomes.instruments.expression_eval.

Syntax (REDCap's branching logic is a subset, so imported data dictionaries work as written):
- numbers `3`, `2.5`; strings `'1'` or `"yes"` (no escapes; a string cannot hold its own quote);
- item references `[pain]`, and `[symptoms(2)]` for one choice of a multiple-choice item
  (1 when checked, 0 when not: REDCap's checkbox syntax);
- comparisons `=` `==` `!=` `<>` `<` `<=` `>` `>=` (not chained), `and`, `or`, `not`
  (keywords in any case), `+ - * /`, unary minus, parentheses;
- functions `sum`, `mean`, `count`, `min`, `max` (one or more arguments) and `if(c, a, b)`.
Items are referenced in brackets only, so an item may be called `sum` or `and` without ambiguity.

Hostile input is bounded: at most MAX_LENGTH characters and MAX_DEPTH levels of nesting, so
neither parsing nor evaluation can exhaust the server's stack or time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

MAX_LENGTH = 2000
# Nesting of brackets, unary operators and calls while parsing, and the depth of the finished
# tree (a long chain `a + b + c + ...` is a deep left-leaning tree): both stay far below
# Python's recursion limit, which the parser, printer and evaluator each recurse within.
MAX_DEPTH = 48

# name: (fewest, most) arguments; None = no upper limit.
FUNCTIONS = {
    "sum": (1, None),
    "mean": (1, None),
    "count": (1, None),
    "min": (1, None),
    "max": (1, None),
    "if": (3, 3),
}
# Each spelling of a comparison and the one operator it stands for in the tree.
COMPARISONS = {
    "=": "=",
    "==": "=",
    "!=": "!=",
    "<>": "!=",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
}


class ExpressionError(ValueError):
    """An expression that cannot be parsed: `key` names the problem, `position` is the
    0-based character offset where it was found (for a message next to the field)."""

    def __init__(self, key: str, position: int, **params):
        super().__init__(f"{key} at {position}")
        self.key = key
        self.position = position
        self.params = params


# --- The tree ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    value: Decimal


@dataclass(frozen=True)
class String:
    value: str


@dataclass(frozen=True)
class Ref:
    name: str
    choice: str | None = None


@dataclass(frozen=True)
class Unary:
    op: str  # "-" or "not"
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str  # "and", "or", a canonical comparison, or an arithmetic operator
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Node, ...]


Node = Number | String | Ref | Unary | Binary | Call


# --- Tokens ------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>[0-9]+(?:\.[0-9]+)?)
  | (?P<string>'[^']*'|"[^"]*")
  | (?P<ref>\[\s*(?P<name>[A-Za-z][A-Za-z0-9_]*)\s*(?:\(\s*(?P<choice>[A-Za-z0-9_.\-]+)\s*\))?\s*\])
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><>|<=|>=|==|!=|[=<>+\-*/(),])
    """,
    re.VERBOSE,
)
_KEYWORDS = ("and", "or", "not")


@dataclass(frozen=True)
class _Token:
    kind: str  # number, string, ref, word, keyword, op, end
    text: str
    position: int
    value: object = None


def _tokens(text: str) -> list[_Token]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ExpressionError("expression.unexpected_character", position, char=text[position])
        kind = match.lastgroup
        if kind in ("name", "choice"):
            kind = "ref"
        token_text = match.group()
        if kind == "number":
            tokens.append(_Token(kind, token_text, position, Decimal(token_text)))
        elif kind == "string":
            tokens.append(_Token(kind, token_text, position, token_text[1:-1]))
        elif kind == "ref":
            ref = Ref(match.group("name"), match.group("choice"))
            tokens.append(_Token(kind, token_text, position, ref))
        elif kind == "word" and token_text.lower() in _KEYWORDS:
            tokens.append(_Token("keyword", token_text.lower(), position))
        elif kind != "space":
            tokens.append(_Token(kind, token_text, position))
        position = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


# --- Parser (recursive descent, one function per precedence level) -----------------------------


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.index = 0
        self.depth = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at(self, kind: str, text: str | None = None) -> bool:
        token = self.token
        return token.kind == kind and (text is None or token.text == text)

    def expect_op(self, text: str) -> None:
        if not self.at("op", text):
            raise ExpressionError("expression.expected", self.token.position, expected=text)
        self.take()

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError("expression.too_deep", self.token.position, limit=MAX_DEPTH)

    def parse(self) -> Node:
        node = self.disjunction()
        if not self.at("end"):
            raise ExpressionError(
                "expression.unexpected", self.token.position, text=self.token.text
            )
        return node

    def disjunction(self) -> Node:
        node = self.conjunction()
        while self.at("keyword", "or"):
            self.take()
            node = Binary("or", node, self.conjunction())
        return node

    def conjunction(self) -> Node:
        node = self.negation()
        while self.at("keyword", "and"):
            self.take()
            node = Binary("and", node, self.negation())
        return node

    def negation(self) -> Node:
        if self.at("keyword", "not"):
            self.take()
            self.nest()
            node = Unary("not", self.negation())
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self) -> Node:
        node = self.additive()
        if self.token.kind == "op" and self.token.text in COMPARISONS:
            op = COMPARISONS[self.take().text]
            node = Binary(op, node, self.additive())
            if self.token.kind == "op" and self.token.text in COMPARISONS:
                # `1 < [x] < 5` reads as a range but would compare a truth value with 5.
                raise ExpressionError("expression.chained_comparison", self.token.position)
        return node

    def additive(self) -> Node:
        node = self.multiplicative()
        while self.token.kind == "op" and self.token.text in ("+", "-"):
            node = Binary(self.take().text, node, self.multiplicative())
        return node

    def multiplicative(self) -> Node:
        node = self.unary()
        while self.token.kind == "op" and self.token.text in ("*", "/"):
            node = Binary(self.take().text, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.at("op", "-"):
            self.take()
            self.nest()
            node = Unary("-", self.unary())
            self.depth -= 1
            return node
        return self.atom()

    def atom(self) -> Node:
        token = self.token
        if token.kind == "number":
            return Number(self.take().value)
        if token.kind == "string":
            return String(self.take().value)
        if token.kind == "ref":
            return self.take().value
        if token.kind == "word":
            return self.call()
        if self.at("op", "("):
            self.take()
            self.nest()
            node = self.disjunction()
            self.expect_op(")")
            self.depth -= 1
            return node
        if token.kind == "end":
            raise ExpressionError("expression.unexpected_end", token.position)
        raise ExpressionError("expression.unexpected", token.position, text=token.text)

    def call(self) -> Node:
        token = self.take()
        name = token.text.lower()
        if name not in FUNCTIONS:
            raise ExpressionError("expression.unknown_function", token.position, name=token.text)
        self.expect_op("(")
        self.nest()
        args = [self.disjunction()]
        while self.at("op", ","):
            self.take()
            args.append(self.disjunction())
        self.expect_op(")")
        self.depth -= 1
        low, high = FUNCTIONS[name]
        if len(args) < low or (high is not None and len(args) > high):
            raise ExpressionError(
                "expression.wrong_arguments", token.position, name=name, count=len(args)
            )
        return Call(name, tuple(args))


def parse(text: str) -> Node:
    """Parse an expression into its tree; raise ExpressionError (with the position) if it
    is not one, is longer than MAX_LENGTH or nests deeper than MAX_DEPTH."""
    if not isinstance(text, str):
        raise ExpressionError("expression.not_text", 0)
    if len(text) > MAX_LENGTH:
        raise ExpressionError("expression.too_long", MAX_LENGTH, limit=MAX_LENGTH)
    node = _Parser(text).parse()
    if depth(node) > MAX_DEPTH:
        raise ExpressionError("expression.too_deep", 0, limit=MAX_DEPTH)
    return node


def children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, Call):
        return node.args
    return ()


def depth(node: Node) -> int:
    """The height of the tree, computed without recursion (the tree is not yet bounded)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children(current))
    return deepest


def walk(node: Node):
    """Every node of the tree, parents before children, left to right."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


def references(node: Node) -> tuple[str, ...]:
    """The names of the items the expression reads, in order of first appearance."""
    names = dict.fromkeys(n.name for n in walk(node) if isinstance(n, Ref))
    return tuple(names)


def to_text(node: Node) -> str:
    """The canonical text of a tree, fully parenthesised: parse(to_text(t)) == t."""
    if isinstance(node, Number):
        return format(node.value, "f")
    if isinstance(node, String):
        quote = '"' if "'" in node.value else "'"
        return f"{quote}{node.value}{quote}"
    if isinstance(node, Ref):
        return f"[{node.name}({node.choice})]" if node.choice is not None else f"[{node.name}]"
    if isinstance(node, Unary):
        space = " " if node.op == "not" else ""
        return f"({node.op}{space}{to_text(node.operand)})"
    if isinstance(node, Binary):
        return f"({to_text(node.left)} {node.op} {to_text(node.right)})"
    return f"{node.function}({', '.join(to_text(arg) for arg in node.args)})"
