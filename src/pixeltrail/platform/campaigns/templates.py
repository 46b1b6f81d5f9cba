"""Personalisation: subjects and bodies are small sandboxed Jinja2 templates over one contact.

What a template can use, and nothing else:

- variables `first_name`, `last_name`, `company`, `email`, and custom fields as
  `fields.<name>` (or `fields['a name']`); a field a contact lacks is empty;
- `{% if %}` / `{% elif %}` / `{% else %}`, comparisons, `and`/`or`/`not`, `~` (joins text),
  inline `x if y else z`;
- filters `default` (alias `d`), `upper`, `lower`, `title`, `capitalize`, `trim`, `truncate`,
  `urlencode`; tests `defined`, `undefined`, `none`.

`default` is the outreach kind: `{{ first_name | default('there') }}` gives "there" when the
contact's first name is empty, not only when it is undefined.

Everything else is refused when the template is saved, with the line: loops, macros, `set`,
`include`/`import`/`extends`, calls, arithmetic, attribute access other than `fields.<name>`,
and unknown variable names (a typo such as `frist_name` is an author's error, better caught
before a thousand emails go out). The checker is an allowlist of syntax nodes, so a construct
not listed here is refused too. So are filter and test calls their functions would refuse
(`upper(1)`, `truncate(foo=1)`, `trim(1)`) and comparisons that fail whatever the contact
(`fields.seats > 10`: contact values are text), see template_calls.py. Behind it, the
immutable sandbox stays as a second wall; whatever still fails while rendering is an Invalid
with its reason for that render alone.

HTML bodies autoescape contact values; subjects and text bodies do not (they are not HTML).
A rendered subject is one line: line breaks from contact data become spaces (no header
injection). Limits: source per kind (MAX_SOURCE), output 1 MiB, rendering 1 s.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any, Literal

from jinja2 import Template, TemplateError, TemplateSyntaxError, Undefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from pixeltrail.platform.campaigns.template_calls import Calls, check_compare
from pixeltrail.platform.campaigns.template_calls import Problem as _Problem
from pixeltrail.platform.errors import Invalid

Kind = Literal["subject", "html", "text"]
KINDS: tuple[Kind, ...] = ("subject", "html", "text")
VARIABLES = ("first_name", "last_name", "company", "email")
MAX_SOURCE: dict[Kind, int] = {"subject": 1000, "html": 256 * 1024, "text": 256 * 1024}
MAX_OUTPUT = 1024 * 1024
RENDER_SECONDS = 1.0
MAX_DEPTH = 40
FILTERS = ("upper", "lower", "title", "capitalize", "trim", "truncate", "urlencode")
TESTS = ("defined", "undefined", "none")
_NAMES = frozenset((*VARIABLES, "fields"))
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")

_REFUSED: dict[type[nodes.Node], str] = {
    nodes.For: "{% for %} loops are",
    nodes.Macro: "macros are",
    nodes.CallBlock: "{% call %} blocks are",
    nodes.Include: "{% include %} is",
    nodes.Import: "{% import %} is",
    nodes.FromImport: "{% import %} is",
    nodes.Extends: "{% extends %} is",
    nodes.Block: "{% block %} is",
    nodes.Assign: "{% set %} is",
    nodes.AssignBlock: "{% set %} is",
    nodes.With: "{% with %} is",
    nodes.FilterBlock: "{% filter %} blocks are",
    nodes.Scope: "{% autoescape %} blocks are",
    nodes.ScopedEvalContextModifier: "{% autoescape %} blocks are",
    nodes.EvalContextModifier: "{% autoescape %} blocks are",
    nodes.Call: "function and method calls are",
    nodes.BinExpr: "arithmetic is",
    nodes.Neg: "arithmetic is",
    nodes.Pos: "arithmetic is",
    nodes.List: "lists are",
    nodes.Tuple: "lists are",
    nodes.Dict: "dictionaries are",
    nodes.Slice: "slices are",
}
# Nodes whose children are checked like themselves; anything not named here is refused.
_ALLOWED = (
    nodes.Template,
    nodes.Output,
    nodes.If,
    nodes.TemplateData,
    nodes.Const,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Compare,
    nodes.Operand,
    nodes.CondExpr,
    nodes.Concat,
    nodes.Keyword,
)


class _Fields:
    """A contact's custom fields: `fields.x` and `fields['x']` read keys, never dict methods."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, str]) -> None:
        self._values = values

    def __getitem__(self, name: str) -> str:
        return self._values[name]


def _default(value: Any, fallback: Any = "") -> Any:
    if isinstance(value, Undefined) or value is None or not str(value).strip():
        return fallback
    return value


class _Sandbox(ImmutableSandboxedEnvironment):
    # A second wall: the checker already refuses arithmetic, but if it ever let some through,
    # `'a' * 10**9` or `9**9**9` could still not build something huge.
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and (not isinstance(right, int) or abs(right) > 64):
            raise SecurityError("exponent too large")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * times > MAX_OUTPUT:
                    raise SecurityError("repetition too large")
        return super().call_binop(context, operator, left, right)


def _environment(kind: Kind) -> _Sandbox:
    env = _Sandbox(autoescape=kind == "html", keep_trailing_newline=True)
    env.globals.clear()
    env.filters = {name: env.filters[name] for name in FILTERS}
    env.filters.update(default=_default, d=_default)
    env.tests = {name: env.tests[name] for name in TESTS}
    return env


_ENVIRONMENTS = {kind: _environment(kind) for kind in KINDS}
_CALLS = Calls(_ENVIRONMENTS["text"].filters, _ENVIRONMENTS["text"].tests)


def _line(node: nodes.Node) -> int | None:
    # Some statements ({% autoescape %}) leave their own line on an inner node only.
    line: int | None = getattr(node, "lineno", None)
    if not line:
        line = next((c.lineno for c in node.iter_child_nodes() if getattr(c, "lineno", 0)), None)
    return line


def _check(node: nodes.Node, depth: int = 0, outer_line: int | None = None) -> None:
    line = _line(node) or outer_line
    if depth > MAX_DEPTH:
        raise _Problem(line, f"expressions nest more than {MAX_DEPTH} deep")
    if isinstance(node, nodes.Const):
        _check_literal(node.value, line)
    for refused, what in _REFUSED.items():
        # `and` and `or` are BinExpr to Jinja, but logic here, not arithmetic.
        if isinstance(node, refused) and not isinstance(node, nodes.And | nodes.Or):
            raise _Problem(line, f"{what} not available in templates")
    if isinstance(node, nodes.Name):
        if node.name == "fields":  # only ever looked into (below), never shown whole
            raise _Problem(line, "write fields.<name> for one custom field")
        if node.name not in _NAMES:
            raise _Problem(
                line,
                f"unknown variable {node.name!r} (use first_name, last_name, company, email "
                "or fields.<name>)",
            )
        return
    if isinstance(node, nodes.Getattr | nodes.Getitem):
        _check_field(node, line)
        return
    if isinstance(node, nodes.Filter | nodes.Test):
        _check_filter(node, line)
    elif not isinstance(node, _ALLOWED):
        raise _Problem(line, f"{type(node).__name__} is not available in templates")
    for child in node.iter_child_nodes():
        _check(child, depth + 1, line)
    # Once what they are made of is known to be allowed (and not too deep):
    if isinstance(node, nodes.Filter | nodes.Test):
        _CALLS.check_call(node, line)
    elif isinstance(node, nodes.Compare):
        check_compare(node, line)


def _check_field(node: nodes.Getattr | nodes.Getitem, line: int | None) -> None:
    if not (isinstance(node.node, nodes.Name) and node.node.name == "fields"):
        raise _Problem(line, "attribute and item access are only for fields.<name>")
    if isinstance(node, nodes.Getattr):
        if node.attr.startswith("_"):
            raise _Problem(line, f"write fields[{node.attr!r}] for a field starting with _")
    elif not (isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str)):
        raise _Problem(line, "fields[...] takes a quoted field name")


def _check_filter(node: nodes.Filter | nodes.Test, line: int | None) -> None:
    is_filter = isinstance(node, nodes.Filter)
    known = ("default", "d", *FILTERS) if is_filter else TESTS
    if node.name not in known:
        kind = "filter" if is_filter else "test"
        raise _Problem(line, f"unknown {kind} {node.name!r} (available: {', '.join(known)})")
    if node.dyn_args is not None or node.dyn_kwargs is not None:
        raise _Problem(line, "*args and **kwargs are not available in templates")


@lru_cache(maxsize=256)
def _check_literal(value: object, line: int | None) -> None:
    """Literals that would fail every render or every send: a lone surrogate cannot be encoded
    in an email, and an infinite float is written as `inf`, a name Jinja's code does not have."""
    if isinstance(value, str) and not _encodable(value):
        raise _Problem(line, "a quoted text holds a character that is not valid Unicode")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Problem(line, "a number is too large")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _template(kind: Kind, source: str) -> Template:
    if not isinstance(source, str):
        raise _Problem(None, "a template is a string")
    if len(source) > MAX_SOURCE[kind]:
        raise _Problem(None, f"at most {MAX_SOURCE[kind]} characters")
    if not _encodable(source):
        raise _Problem(None, "it holds a character that is not valid Unicode (a lone surrogate)")
    env = _ENVIRONMENTS[kind]
    try:
        tree = env.parse(source)
        _check(tree)
        return env.from_string(tree)
    except TemplateSyntaxError as exc:
        raise _Problem(exc.lineno, exc.message or "syntax error") from None
    except RecursionError:
        raise _Problem(None, f"expressions nest more than {MAX_DEPTH} deep") from None
    except ValueError as exc:  # the lexer's int(): more digits than Python converts (4,300)
        raise _Problem(None, f"a number is too long ({exc})") from None


def template_tokens(source: str, kind: Kind) -> Iterator[tuple[int, str, str]]:
    """The raw tokens of `source` as the `kind` environment lexes it: (line, type, text), the
    whitespace control (`{%-`, `-%}`) already applied to the text around tags. Raises
    TemplateSyntaxError."""
    return _ENVIRONMENTS[kind].lexer.tokeniter(source, None)


def _message(label: str, problem: _Problem) -> str:
    where = f"{label}, line {problem.line}" if problem.line else label
    return f"{where}: {problem.reason}"


def validate_template(source: str, kind: Kind, where: str, label: str | None = None) -> None:
    """Invalid (field `where`, message naming `label` and the line) unless `source` is usable."""
    try:
        _template(kind, source)
    except _Problem as problem:
        raise Invalid(_message(label or where, problem), where) from None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def template_context(contact: Mapping[str, Any]) -> dict[str, Any]:
    """The variables a template sees for `contact` (a contacts row as a mapping)."""
    context: dict[str, Any] = {name: _text(contact.get(name)) for name in VARIABLES}
    custom = contact.get("fields")
    values = {str(k): _text(v) for k, v in custom.items()} if isinstance(custom, Mapping) else {}
    context["fields"] = _Fields(values)
    return context


def render(source: str, contact: Mapping[str, Any], kind: Kind) -> str:
    """`source` rendered for `contact`; Invalid (field `kind`) if it breaks a limit or a rule."""
    return render_with_context(source, template_context(contact), kind)


def render_with_context(source: str, context: dict[str, Any], kind: Kind) -> str:
    """`render` with the variables made once by `template_context` (a message's three parts)."""
    try:
        template = _template(kind, source)
    except _Problem as problem:
        raise Invalid(_message(kind, problem), kind) from None
    deadline = time.monotonic() + RENDER_SECONDS
    parts: list[str] = []
    size = 0
    try:
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise Invalid(f"the rendered {kind} is longer than {MAX_OUTPUT} characters", kind)
            if time.monotonic() > deadline:
                raise Invalid(f"rendering the {kind} took longer than {RENDER_SECONDS} s", kind)
            parts.append(chunk)
    except (SecurityError, TemplateError) as exc:
        raise Invalid(f"the {kind} cannot be rendered: {exc}", kind) from None
    except Invalid:
        raise
    except Exception as exc:  # anything the checks did not foresee fails this render only
        raise Invalid(f"the {kind} cannot be rendered: {type(exc).__name__}: {exc}", kind) from None
    text = "".join(parts)
    return _LINE_BREAKS.sub(" ", text).strip() if kind == "subject" else text
