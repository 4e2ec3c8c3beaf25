"""A small checked expression language for the conditions an admin writes in config (a program's entry, exits,
tiers and audiences).

Why not `DataFrame.eval`/`query`: they evaluate Python, and `@`, attributes and calls let an edited file run code
while it is merely validated. Here the text is parsed with Python's own parser (`ast.parse`, which builds a tree
and runs nothing), every node is checked against a short whitelist, every name against the known columns and
their types, and the accepted tree is turned into NumPy operations over whole columns. Nothing is compiled or
evaluated as Python.

Grammar (Python's syntax, restricted to these forms)::

    expr       := expr "or" expr | expr "and" expr | "not" expr | comparison | sum
    comparison := sum (cmp_op sum)+             # chained: 14 <= tenure_days < 21
                | sum ["not"] "in" "[" [literal ("," literal)*] "]"
                | sum "is" ["not"] "null"
    cmp_op     := "==" | "!=" | "<" | "<=" | ">" | ">="
    sum        := sum ("+" | "-") product | product
    product    := product ("*" | "/") unary | unary
    unary      := ("-" | "+") unary | atom
    atom       := column | literal | "(" expr ")"
    literal    := number | string | "true" | "false"     # strings in '...' or "..."

Types: every column is a number, a string or a bool (true/false). `+ - * /` and `< <= > >=` take numbers; `==`,
`!=` and `in` take two sides of the same type (a string column with a known set of values refuses a literal
outside it, so a typo such as `band == "helthy"` is an error, not a rule that never fires); `and`, `or`, `not`
take bools. A condition must be a bool. Anything else — attributes, calls, subscripts, `@`, lambdas,
comprehensions, f-strings, unknown names — is refused with an ExpressionError naming the part at fault.

Missing values (NaN, None) are explicit:
- a comparison (`==`, `!=`, `<`, ..., `in`, `not in`) with a missing value on either side is false;
- arithmetic with a missing value is missing, and so is a division by zero;
- a missing value in a bool column reads as false; `not` turns false into true, so `not (x > 3)` holds where x
  is missing;
- `x is null` / `x is not null` test for a missing value;
- a column the frame does not have is missing on every row.

One module over 400 lines on purpose: checking a node's type and turning it into NumPy are one pass over one tree,
and the node whitelist, the type rules and the missing-value rules above are only safe to change read together.
"""

from __future__ import annotations

import ast
import difflib
import operator
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = ["Columns", "Expression", "ExpressionError", "Kind", "parse", "parse_condition"]

Kind = Literal["number", "string", "bool"]
# Column name -> its kind, or (for a string column with a closed set of values) the tuple of those values.
Columns = Mapping[str, "Kind | Sequence[str]"]

MAX_LENGTH = 2000  # characters; a condition is one line of config, not a program
MAX_DEPTH = 100  # nesting of the parsed tree; bounds the checker's and the evaluator's recursion

# (values, missing): a NumPy array or scalar per node, and where it is missing.
_Result = tuple[Any, Any]
_Eval = Callable[[pd.DataFrame], _Result]

_ARITHMETIC: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", np.add),
    ast.Sub: ("-", np.subtract),
    ast.Mult: ("*", np.multiply),
    ast.Div: ("/", np.divide),
}
_ORDERING: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
}
_EQUALITY: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Eq: ("==", operator.eq),
    ast.NotEq: ("!=", operator.ne),
}
_LITERAL_WORDS: dict[str, bool] = {"true": True, "false": False}
_NULL = "null"
_NO_ROWS = pd.DataFrame()  # literals ignore the frame
_REFUSED: dict[type, str] = {
    ast.Attribute: "attribute access (`.`) is not allowed",
    ast.Call: "function calls are not allowed",
    ast.Subscript: "subscripts (`[...]` after a value) are not allowed",
    ast.Lambda: "lambdas are not allowed",
    ast.IfExp: "`... if ... else ...` is not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.NamedExpr: "assignments (`:=`) are not allowed",
    ast.Starred: "`*` unpacking is not allowed",
    ast.Dict: "dicts are not allowed",
    ast.Set: "sets are not allowed",
    ast.Tuple: "tuples are not allowed; write a list [a, b] after `in`",
    ast.Await: "`await` is not allowed",
}


class ExpressionError(ValueError):
    """An expression outside the language or ill-typed; the message names the part at fault."""

    def __init__(self, message: str, expression: str, offset: int | None = None) -> None:
        self.message = message
        self.expression = expression
        self.offset = offset  # 0-based character offset of the part at fault, when known
        super().__init__(message)


@dataclass(frozen=True)
class _Node:
    kind: Kind
    run: _Eval
    choices: frozenset[str] | None = None  # the values a string column may hold, when known
    column: str | None = None


@dataclass(frozen=True, eq=False)
class Expression:
    """A checked expression: its text, its result kind, the columns it reads; `evaluate` runs it over a frame."""

    text: str
    kind: Kind
    columns: frozenset[str]
    _root: _Node

    def evaluate(self, frame: pd.DataFrame) -> pd.Series:
        """The value on every row of `frame` (bool for conditions), computed column-wise with NumPy."""
        with np.errstate(all="ignore"):
            values, missing = self._root.run(frame)
        n = len(frame)
        if self.kind in ("bool", "number"):
            dtype = bool if self.kind == "bool" else float
            return pd.Series(np.broadcast_to(np.asarray(values, dtype=dtype), (n,)).copy(), index=frame.index)
        out = np.empty(n, dtype=object)
        out[:] = values
        out[np.broadcast_to(np.asarray(missing, dtype=bool), (n,))] = None
        return pd.Series(out, index=frame.index, dtype=object)


def parse(text: str, columns: Columns) -> Expression:
    """Parse and check `text` against `columns`; raise ExpressionError for anything outside the language."""
    if not isinstance(text, str):
        raise ExpressionError(f"expected an expression as text, got {type(text).__name__}", repr(text))
    if not text.strip():
        raise ExpressionError("empty expression", text)
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"longer than {MAX_LENGTH} characters", text)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. invalid escapes in string literals: the literal is still checked
            tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        offset = (error.offset - 1) if error.offset else None
        raise ExpressionError(f"not a valid expression: {error.msg}", text, offset) from None
    except (ValueError, RecursionError, MemoryError) as error:  # NUL bytes, absurd nesting
        raise ExpressionError(f"not a valid expression: {error}", text) from None
    checker = _Checker(text.strip(), _normalize(columns))
    root = checker.node(tree.body, 0)
    return Expression(text, root.kind, frozenset(checker.used), root)


def parse_condition(text: str, columns: Columns) -> Expression:
    """Like `parse`, and the result must be a condition (a bool)."""
    expression = parse(text, columns)
    if expression.kind != "bool":
        raise ExpressionError(f"is a {expression.kind}, not a condition (true or false)", text)
    return expression


def _normalize(columns: Columns) -> dict[str, tuple[Kind, frozenset[str] | None]]:
    out: dict[str, tuple[Kind, frozenset[str] | None]] = {}
    for name, spec in columns.items():
        if isinstance(spec, str):
            if spec not in ("number", "string", "bool"):
                raise ValueError(f"column {name!r}: unknown kind {spec!r}")
            out[name] = (spec, None)  # type: ignore[assignment]
        else:
            out[name] = ("string", frozenset(spec))
    return out


def _number_column(frame: pd.DataFrame, name: str) -> _Result:
    if name not in frame:
        values = np.full(len(frame), np.nan)
    else:
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return values, np.isnan(values)


def _string_column(frame: pd.DataFrame, name: str) -> _Result:
    if name not in frame:
        return np.full(len(frame), None, dtype=object), np.ones(len(frame), dtype=bool)
    values = frame[name].to_numpy(dtype=object)
    missing = pd.isna(values)
    # None for every kind of missing (pd.NA would make `==` ambiguous); comparisons mask them out anyway.
    return np.where(missing, None, values), missing


def _bool_column(frame: pd.DataFrame, name: str) -> _Result:
    if name not in frame:
        return np.zeros(len(frame), dtype=bool), np.ones(len(frame), dtype=bool)
    column = frame[name].astype(object)
    missing = column.isna().to_numpy(dtype=bool)
    return column.eq(True).to_numpy(dtype=bool) & ~missing, missing


_COLUMN_READERS: dict[Kind, Callable[[pd.DataFrame, str], _Result]] = {
    "number": _number_column,
    "string": _string_column,
    "bool": _bool_column,
}


class _Checker:
    """Walks the parsed tree once: refuses what is outside the language, types the rest, builds the evaluator."""

    def __init__(self, text: str, columns: dict[str, tuple[Kind, frozenset[str] | None]]) -> None:
        self.text = text
        self.columns = columns
        self.used: set[str] = set()

    def fail(self, node: ast.AST, message: str) -> ExpressionError:
        part = ast.get_source_segment(self.text, node) or self.text
        part = part if len(part) <= 80 else part[:77] + "..."
        return ExpressionError(f"`{part}`: {message}", self.text, getattr(node, "col_offset", None))

    def node(self, node: ast.AST, depth: int) -> _Node:
        if depth > MAX_DEPTH:
            raise self.fail(node, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node, depth)
        if isinstance(node, ast.BinOp):
            return self.binary(node, depth)
        if isinstance(node, ast.BoolOp):
            return self.boolean(node, depth)
        if isinstance(node, ast.Compare):
            return self.compare(node, depth)
        if isinstance(node, ast.List):
            raise self.fail(node, "a list may only follow `in` or `not in`")
        reason = _REFUSED.get(type(node), f"{type(node).__name__} is not part of the expression language")
        raise self.fail(node, reason)

    def name(self, node: ast.Name) -> _Node:
        if node.id in _LITERAL_WORDS:
            value = _LITERAL_WORDS[node.id]
            return _Node("bool", lambda frame: (value, False))
        if node.id == _NULL:
            raise self.fail(node, "`null` may only be used as `x is null` or `x is not null`")
        if node.id not in self.columns:
            close = difflib.get_close_matches(node.id, list(self.columns), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise self.fail(node, f"unknown column {node.id!r}{hint}")
        kind, choices = self.columns[node.id]
        self.used.add(node.id)
        reader, name = _COLUMN_READERS[kind], node.id
        return _Node(kind, lambda frame: reader(frame, name), choices, name)

    def constant(self, node: ast.Constant) -> _Node:
        value = node.value
        if isinstance(value, bool):
            return _Node("bool", lambda frame: (value, False))
        if isinstance(value, (int, float)):
            try:
                number = np.float64(float(value))
            except OverflowError:
                raise self.fail(node, "number too large") from None
            return _Node("number", lambda frame: (number, np.isnan(number)))
        if isinstance(value, str):
            return _Node("string", lambda frame: (value, False))
        if value is None:
            raise self.fail(node, "use `x is null` to test for a missing value")
        raise self.fail(node, f"{type(value).__name__} literals are not allowed")

    def unary(self, node: ast.UnaryOp, depth: int) -> _Node:
        operand = self.node(node.operand, depth + 1)
        if isinstance(node.op, ast.Not):
            self.expect(node.operand, operand, "bool", "`not`")
            run = operand.run
            return _Node("bool", lambda frame: (np.logical_not(run(frame)[0]), False))
        if isinstance(node.op, (ast.USub, ast.UAdd)):
            self.expect(node.operand, operand, "number", "`-` and `+`")
            run, sign = operand.run, (-1.0 if isinstance(node.op, ast.USub) else 1.0)

            def signed(frame: pd.DataFrame) -> _Result:
                values, missing = run(frame)
                return sign * values, missing

            return _Node("number", signed)
        raise self.fail(node, "`~` is not allowed; use `not`")

    def binary(self, node: ast.BinOp, depth: int) -> _Node:
        if type(node.op) not in _ARITHMETIC:
            raise self.fail(node, "only + - * / are allowed between numbers")
        symbol, function = _ARITHMETIC[type(node.op)]
        left, right = self.node(node.left, depth + 1), self.node(node.right, depth + 1)
        self.expect(node.left, left, "number", f"`{symbol}`")
        self.expect(node.right, right, "number", f"`{symbol}`")
        divide = function is np.divide

        def arithmetic(frame: pd.DataFrame) -> _Result:
            a, b = left.run(frame)[0], right.run(frame)[0]
            values = function(a, b)
            if divide:
                values = np.where(b == 0, np.nan, values)
            return values, np.isnan(values)

        return _Node("number", arithmetic)

    def boolean(self, node: ast.BoolOp, depth: int) -> _Node:
        word = "and" if isinstance(node.op, ast.And) else "or"
        parts = [self.node(value, depth + 1) for value in node.values]
        for value, part in zip(node.values, parts, strict=True):
            self.expect(value, part, "bool", f"`{word}`")
        combine = np.logical_and if word == "and" else np.logical_or
        runs = [part.run for part in parts]

        def boolean(frame: pd.DataFrame) -> _Result:
            values = runs[0](frame)[0]
            for run in runs[1:]:
                values = combine(values, run(frame)[0])
            return values, False

        return _Node("bool", boolean)

    def compare(self, node: ast.Compare, depth: int) -> _Node:
        if any(isinstance(op, (ast.Is, ast.IsNot, ast.In, ast.NotIn)) for op in node.ops):
            if len(node.ops) != 1:
                raise self.fail(node, "`in`, `not in`, `is` and `is not` cannot be chained; join tests with `and`")
            if isinstance(node.ops[0], (ast.Is, ast.IsNot)):
                return self.null_test(node, depth)
            return self.membership(node, depth)
        nodes = [node.left, *node.comparators]
        terms = [self.node(term, depth + 1) for term in nodes]
        tests = [
            self.pairwise(node, op, terms[i], terms[i + 1], nodes[i], nodes[i + 1]) for i, op in enumerate(node.ops)
        ]
        runs = [term.run for term in terms]

        def comparison(frame: pd.DataFrame) -> _Result:
            results = [run(frame) for run in runs]
            values: Any = True
            for index, test in enumerate(tests):
                values = np.logical_and(values, test(results[index], results[index + 1]))
            return values, False

        return _Node("bool", comparison)

    def pairwise(
        self, whole: ast.Compare, op: ast.cmpop, left: _Node, right: _Node, left_node: ast.AST, right_node: ast.AST
    ) -> Callable[[_Result, _Result], Any]:
        """One link of a (possibly chained) comparison; false where either side is missing."""
        if type(op) in _ORDERING:
            symbol, function = _ORDERING[type(op)]
            self.expect(left_node, left, "number", f"`{symbol}`")
            self.expect(right_node, right, "number", f"`{symbol}`")
        else:
            symbol, function = _EQUALITY[type(op)]
            if left.kind != right.kind:
                raise self.fail(whole, f"`{symbol}` compares a {left.kind} with a {right.kind}")
            self.check_choice(left, right_node)
            self.check_choice(right, left_node)

        def test(a: _Result, b: _Result) -> Any:
            return np.logical_and(np.asarray(function(a[0], b[0]), dtype=bool), ~(a[1] | b[1]))

        return test

    def membership(self, node: ast.Compare, depth: int) -> _Node:
        word = "in" if isinstance(node.ops[0], ast.In) else "not in"
        left, items = self.node(node.left, depth + 1), node.comparators[0]
        if not isinstance(items, ast.List):
            raise self.fail(items, f'`{word}` needs a list of literals, e.g. ["critical", "churning"]')
        if left.kind == "bool":
            raise self.fail(node.left, f"`{word}` takes a number or a string, not a bool")
        values: list[Any] = []
        for item in items.elts:
            if not _is_literal(item):
                raise self.fail(item, f"`{word}` lists hold literals only")
            literal = self.node(item, depth + 2)
            if literal.kind != left.kind:
                raise self.fail(item, f"`{word}` lists {left.kind} values here, not a {literal.kind}")
            self.check_choice(left, item)
            values.append(literal.run(_NO_ROWS)[0])
        negate, run = word == "not in", left.run
        wanted = np.asarray(values, dtype=float) if left.kind == "number" else values

        def member(frame: pd.DataFrame) -> _Result:
            subject, missing = run(frame)
            if left.kind == "number":
                found = np.isin(subject, wanted)
            else:
                found = pd.Series(np.atleast_1d(np.asarray(subject, dtype=object)), dtype=object).isin(wanted)
                found = found.to_numpy(dtype=bool) if np.ndim(subject) else bool(found.iloc[0])
            return np.logical_and(found != negate, np.logical_not(missing)), False

        return _Node("bool", member)

    def null_test(self, node: ast.Compare, depth: int) -> _Node:
        op, target = node.ops[0], node.comparators[0]
        if not (isinstance(target, ast.Name) and target.id == _NULL):
            raise self.fail(node, "`is` and `is not` only test for a missing value: `x is null`, `x is not null`")
        subject = self.node(node.left, depth + 1).run
        negate = isinstance(op, ast.IsNot)

        def is_null(frame: pd.DataFrame) -> _Result:
            return np.asarray(subject(frame)[1], dtype=bool) != negate, False

        return _Node("bool", is_null)

    def check_choice(self, column: _Node, literal: ast.AST) -> None:
        """A string column with known values refuses a literal outside them (a typo would never match)."""
        if column.choices is None or not isinstance(literal, ast.Constant) or not isinstance(literal.value, str):
            return
        if literal.value not in column.choices:
            options = ", ".join(sorted(column.choices))
            raise self.fail(literal, f"{column.column} is one of {options}")

    def expect(self, node: ast.AST, typed: _Node, kind: Kind, where: str) -> None:
        if typed.kind != kind:
            what = f"{typed.column} is a {typed.kind}" if typed.column else f"this is a {typed.kind}"
            raise self.fail(node, f"{where} takes {_PLURAL[kind]}; {what}")


_PLURAL: dict[str, str] = {"number": "numbers", "string": "strings", "bool": "conditions (true or false)"}


def _is_literal(node: ast.AST) -> bool:
    """A literal list item: a constant, a true/false word, or a signed number."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name):
        return node.id in _LITERAL_WORDS
    return isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) and _is_literal(node.operand)
