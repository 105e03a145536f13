"""The small rule language of tiers, stages and groups: safe to take from a file or a command line.

A rule is one boolean expression over a customer's segment facts, for example::

    r >= 4 and f >= 4 and m >= 4
    recency_days > 180 and purchase_days >= 2
    tier in ("high_value", "potential") and province == "广东省"
    "books" in categories and not "taobao" in platforms

Grammar (a subset of Python's expression syntax, parsed with :mod:`ast` and walked here; nothing
is ever passed to ``eval``): ``and``, ``or``, ``not``, parentheses, comparisons ``== != < <= > >=``
(chains allowed), ``in`` / ``not in`` against a list or tuple of constants or against a set-valued
fact (``categories``, ``platforms``, ``tags``), string, integer and ``true``/``false``
constants, and the names of :data:`FACTS`. A comparison with a missing fact (``r`` of a
customer who never bought, ``province`` of one without an address) is false, and ``not`` of it
true: rules are two-valued.

:func:`compile_rule` checks the rule when it is loaded (unknown names, calls, attribute access,
arithmetic all raise ``ConfigError`` naming the rule) and returns a predicate over a facts
mapping.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

from vault.errors import ConfigError

Facts = Mapping[str, Any]
Predicate = Callable[[Facts], bool]

FACTS: dict[str, str] = {
    "r": "recency score 1-5 (5 = most recent); missing without a purchase",
    "f": "frequency score 1-5",
    "m": "monetary score 1-5",
    "orders": "qualifying orders (not cancelled or refunded)",
    "purchase_days": "distinct purchase days",
    "frequency": "purchase days or orders, as [summary] frequency says",
    "total": "total spend, minor units",
    "average": "average spend per purchase (total / frequency), minor units, rounded down",
    "recency_days": "days from the last purchase to the as-of day (default today)",
    "age_days": "days from the first purchase to the as-of day",
    "tier": "the customer's value tier (groups only)",
    "stage": "the customer's lifecycle stage (groups only)",
    "categories": "set of purchased product categories (groups only)",
    "platforms": "set of platforms purchased on (groups only)",
    "tags": "set of the customer's tags, e.g. 'vip' in tags (groups only)",
    "province": "province name from the address, e.g. 广东省 (groups only)",
    "province_code": "2-digit province code, e.g. 44 (groups only)",
    "city": "city name from the address, e.g. 深圳市 (groups only)",
    "city_code": "4-digit city code, e.g. 4403 (groups only)",
}
SCORE_FACTS = frozenset(FACTS) - {
    "tier",
    "stage",
    "categories",
    "platforms",
    "tags",
    "province",
    "province_code",
    "city",
    "city_code",
}
SET_FACTS = frozenset({"categories", "platforms", "tags"})

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_CONSTANT_NAMES = {"true": True, "false": False, "True": True, "False": False}
MAX_RULE_LENGTH = 2000


class _RuleError(Exception):
    pass


def compile_rule(text: str, *, where: str, allowed: frozenset[str] = frozenset(FACTS)) -> Predicate:
    """Check ``text`` and return it as a predicate; ``where`` names the rule in errors."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where}: a rule is a non-empty string")
    if len(text) > MAX_RULE_LENGTH:
        raise ConfigError(f"{where}: a rule is at most {MAX_RULE_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise ConfigError(
            f"{where}: the rule is not valid syntax (column {error.offset})"
        ) from None
    try:
        predicate = _compile(tree.body, allowed)
    except _RuleError as error:
        raise ConfigError(f"{where}: {error}") from None
    return lambda facts: predicate(facts) is True


def names_in(text: str) -> set[str]:
    """The fact names a (valid) rule reads."""
    return {
        node.id
        for node in ast.walk(ast.parse(text.strip(), mode="eval"))
        if isinstance(node, ast.Name) and node.id not in _CONSTANT_NAMES
    }


def _constant(node: ast.expr) -> Any:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str | int)
        and node.value is not None
    ):
        return node.value
    if isinstance(node, ast.Name) and node.id in _CONSTANT_NAMES:
        return _CONSTANT_NAMES[node.id]
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and type(node.operand.value) is int
    ):
        return -node.operand.value
    raise _RuleError("expected a string or integer constant")


def _compile(node: ast.expr, allowed: frozenset[str]) -> Callable[[Facts], Any]:
    if isinstance(node, ast.BoolOp):
        parts = [_compile(value, allowed) for value in node.values]
        if isinstance(node.op, ast.And):
            return lambda facts: all(part(facts) is True for part in parts)
        return lambda facts: any(part(facts) is True for part in parts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _compile(node.operand, allowed)
        return lambda facts: inner(facts) is not True
    if isinstance(node, ast.Compare):
        return _compile_compare(node, allowed)
    if isinstance(node, ast.Name):
        if node.id in _CONSTANT_NAMES:
            value = _CONSTANT_NAMES[node.id]
            return lambda facts: value
        if node.id not in allowed:
            known = ", ".join(sorted(allowed))
            raise _RuleError(f"unknown name {node.id!r} (known: {known})")
        name = node.id
        return lambda facts: facts.get(name)
    if isinstance(node, ast.Constant | ast.UnaryOp):
        value = _constant(node)
        return lambda facts: value
    raise _RuleError(f"{type(node).__name__} is not allowed in a rule")


def _operand(node: ast.expr, allowed: frozenset[str]) -> Callable[[Facts], Any]:
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        values = frozenset(_constant(element) for element in node.elts)
        return lambda facts: values
    if isinstance(node, ast.Name) and node.id not in _CONSTANT_NAMES:
        return _compile(node, allowed)
    value = _constant(node)
    return lambda facts: value


def _compile_compare(node: ast.Compare, allowed: frozenset[str]) -> Callable[[Facts], bool]:
    operands = [_operand(node.left, allowed), *(_operand(c, allowed) for c in node.comparators)]
    steps: list[Callable[[Any, Any], bool]] = []
    for op in node.ops:
        if isinstance(op, ast.In | ast.NotIn):
            negate = isinstance(op, ast.NotIn)

            def member(left: Any, right: Any, negate: bool = negate) -> bool:
                if not isinstance(right, frozenset | set):
                    raise TypeError("in needs a list or a set-valued fact")
                return (left in right) != negate

            steps.append(member)
        elif type(op) in _COMPARE:
            steps.append(_COMPARE[type(op)])
        else:
            raise _RuleError(f"the operator {type(op).__name__} is not allowed in a rule")
    for op, right in zip(node.ops, node.comparators, strict=True):
        if isinstance(op, ast.In | ast.NotIn) and not isinstance(
            right, ast.List | ast.Tuple | ast.Set | ast.Name
        ):
            raise _RuleError("in / not in needs a list of constants or a set-valued fact")

    def compare(facts: Facts) -> bool:
        values = [operand(facts) for operand in operands]
        for index, step in enumerate(steps):
            left, right = values[index], values[index + 1]
            if left is None or right is None:
                return False
            try:
                if not step(left, right):
                    return False
            except TypeError:  # "a" < 3, 3 in 4: false, as a missing fact is
                return False
        return True

    return compare
