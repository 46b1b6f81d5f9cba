"""Filter and test calls and comparisons in a template, checked before it ever runs.

Jinja only finds out while rendering that `upper(1)` has one argument too many, that
`truncate` has no argument `foo` or that `fields.seats > 10` orders text against a number:
each is a TypeError for every contact. Checked here when the template is saved, they are the
author's error with its line, as the other template errors are (templates.py).

A call is checked against the signature of the function the environment calls (less what
Jinja passes itself and the value filtered or tested), and the arguments whose type matters
are literals of that type.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import nodes


class Problem(Exception):
    """What is wrong with a template, and on which line (None: the template as a whole)."""

    def __init__(self, line: int | None, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


# (filter, argument): the literal types it takes, and how to write one.
_ARGUMENTS: dict[tuple[str, str], tuple[tuple[type, ...], str]] = {
    ("truncate", "length"): ((int,), "a whole number such as 40"),
    ("truncate", "end"): ((str,), "quoted text such as '...'"),
    ("truncate", "leeway"): ((int, type(None)), "a whole number such as 5, or none"),
    ("trim", "chars"): ((str, type(None)), "quoted text such as '-', or none"),
}
_TEXT_ONLY = frozenset({"truncate"})  # filters that fail on anything but text (len)
_ORDERING = frozenset({"lt", "lteq", "gt", "gteq"})
_NUMBERS = frozenset({"int", "float", "bool"})


def _signature(function: Callable[..., Any]) -> inspect.Signature:
    """The arguments a template writes: after what Jinja passes itself, and the value."""
    parameters = list(inspect.signature(function).parameters.values())
    passed = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0
    return inspect.Signature(parameters[passed + 1 :])


class Calls:
    """Checks filter and test calls against the functions an environment calls."""

    def __init__(self, filters: Mapping[str, Any], tests: Mapping[str, Any]) -> None:
        self._signatures = {
            True: {name: _signature(f) for name, f in filters.items()},
            False: {name: _signature(f) for name, f in tests.items()},
        }

    def check_call(self, node: nodes.Filter | nodes.Test, line: int | None) -> None:
        """Problem unless `node` (a known filter or test) is called as its function takes."""
        is_filter = isinstance(node, nodes.Filter)
        call = f"{'filter' if is_filter else 'test'} {node.name!r}"
        signature = self._signatures[is_filter][node.name]
        names = list(signature.parameters)
        if len(node.args) > len(names):
            if not names:
                raise Problem(line, f"{call} takes no arguments")
            most = f"at most {len(names)} argument{'s' * (len(names) > 1)}"
            raise Problem(line, f"{call} takes {most}, not {len(node.args)}")
        # Jinja's parser makes Keyword nodes here (its annotations say Pair).
        given: list[nodes.Node] = list(node.kwargs)
        keywords = {k.key: k.value for k in given if isinstance(k, nodes.Keyword)}
        for key in keywords:
            if key not in names:
                known = f"it takes {', '.join(names)}" if names else "it takes no arguments"
                raise Problem(line, f"{call} has no argument {key!r} ({known})")
        try:
            bound = signature.bind(*node.args, **keywords)
        except TypeError as exc:  # the same argument given twice, by place and by name
            raise Problem(line, f"{call}: {exc}") from None
        for name, value in bound.arguments.items():
            expected = _ARGUMENTS.get((node.name, name))
            if expected is None:
                continue
            types, described = expected
            if not (isinstance(value, nodes.Const) and type(value.value) in types):
                raise Problem(line, f"{call}: {name} is {described}")
        filtered = node.node if is_filter and node.name in _TEXT_ONLY else None
        if filtered is not None and not _kinds(filtered) <= {"text", "missing"}:
            raise Problem(line, f"{call} works on text, not on numbers, true/false or none")
        if node.name == "truncate":
            _check_truncate(bound.arguments, line)


def _check_truncate(arguments: Mapping[str, Any], line: int | None) -> None:
    # Jinja asserts both while rendering: an AssertionError for every contact.
    length, end, leeway = (arguments.get(name) for name in ("length", "end", "leeway"))
    shortest = len(end.value) if isinstance(end, nodes.Const) else len("...")
    if isinstance(length, nodes.Const) and length.value < shortest:
        raise Problem(line, f"filter 'truncate': length is at least {shortest}, its end's")
    if isinstance(leeway, nodes.Const) and leeway.value is not None and leeway.value < 0:
        raise Problem(line, "filter 'truncate': leeway is not negative")


def check_compare(node: nodes.Compare, line: int | None) -> None:
    """Problem if a comparison fails whatever the contact (text < number, none in text)."""
    left = _kinds(node.expr)
    for operand in node.ops:
        right = _kinds(operand.expr)
        both = (left | right) - {"missing"}  # a field a contact lacks: Jinja's own error
        if operand.op in _ORDERING:
            if "none" in both or "other" in both or ("text" in both and both & _NUMBERS):
                raise Problem(
                    line,
                    "only text with text or numbers with numbers can be ordered "
                    "(contact values are text)",
                )
        elif operand.op in ("in", "notin") and both - {"text"}:
            raise Problem(line, "'in' looks for text in text")
        left = right


def _kinds(node: nodes.Node) -> frozenset[str]:
    """What `node` can evaluate to: text, missing (a field a contact lacks), int, float,
    bool, none or other."""
    if isinstance(node, nodes.Const):
        value = node.value
        if value is None:
            return frozenset({"none"})
        kind = {bool: "bool", int: "int", float: "float", str: "text"}.get(type(value), "other")
        return frozenset({kind})
    if isinstance(node, nodes.Name | nodes.Concat):
        return frozenset({"text"})
    if isinstance(node, nodes.Getattr | nodes.Getitem):
        return frozenset({"text", "missing"})
    if isinstance(node, nodes.Filter):
        if node.name not in ("default", "d"):
            return frozenset({"text"})
        # The value unless it is empty, else the fallback ('' when none is given).
        fallback = node.args[0] if node.args else next((k.value for k in node.kwargs), None)
        value = _kinds(node.node) - {"missing", "none"} if node.node is not None else frozenset()
        return value | (_kinds(fallback) if fallback is not None else frozenset({"text"}))
    if isinstance(node, nodes.Test | nodes.Compare | nodes.Not):
        return frozenset({"bool"})
    if isinstance(node, nodes.And | nodes.Or):
        return _kinds(node.left) | _kinds(node.right)
    if isinstance(node, nodes.CondExpr):
        other = _kinds(node.expr2) if node.expr2 is not None else frozenset({"missing"})
        return _kinds(node.expr1) | other
    return frozenset({"other"})
