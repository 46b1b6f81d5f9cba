"""Personalisation templates: what authors can write, and what an attacker cannot."""

from __future__ import annotations

import time

import pytest
from jinja2.exceptions import SecurityError

from pixeltrail.platform.campaigns import templates
from pixeltrail.platform.campaigns.templates import render, validate_template
from pixeltrail.platform.errors import Invalid

ADA = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company": "Analytical Engines",
    "email": "ada@example.com",
    "fields": {"plan": "pro", "seats": 12, "items": "three", "vip": True, "_id": "x1"},
}


def test_contact_fields_and_custom_fields() -> None:
    source = (
        "{{ first_name }} {{ last_name|upper }} at {{ company }} ({{ email }}): "
        "{{ fields.plan }}/{{ fields.seats }}/{{ fields['items'] }}/{{ fields['_id'] }}"
        "{% if fields.vip %} VIP{% endif %}[{{ fields.missing }}]"
    )
    assert render(source, ADA, "text") == (
        "Ada LOVELACE at Analytical Engines (ada@example.com): pro/12/three/x1 VIP[]"
    )


def test_default_fills_empty_and_missing_values() -> None:
    source = "Hi {{ first_name | default('there') }}, {{ fields.team | d('your team') }}"
    assert render(source, {"first_name": "", "fields": {}}, "text") == "Hi there, your team"
    assert render(source, {"first_name": "  "}, "text") == "Hi there, your team"
    assert render(source, ADA, "text") == "Hi Ada, your team"


def test_and_or_not_combine_conditions() -> None:
    source = (
        "{% if first_name and company %}Hi {{ first_name }} at {{ company }}"
        "{% elif first_name or fields.nick %}Hi {{ first_name or fields.nick }}"
        "{% else %}Hello{% endif %}{% if not fields.vip %}.{% endif %}"
    )
    validate_template(source, "html", "step 1 html")
    assert render(source, ADA, "html") == "Hi Ada at Analytical Engines"
    assert render(source, {"fields": {"nick": "Bo"}}, "html") == "Hi Bo."
    assert render(source, {}, "html") == "Hello."


def test_contact_values_are_escaped_in_html_only() -> None:
    evil = {"first_name": "<script>alert(1)</script>", "company": 'A "B" & C'}
    html = render("<p>{{ first_name }} {{ company }}</p>", evil, "html")
    assert html == "<p>&lt;script&gt;alert(1)&lt;/script&gt; A &#34;B&#34; &amp; C</p>"
    assert render("{{ first_name }}", evil, "text") == "<script>alert(1)</script>"
    assert render("<b>{{ first_name }}</b>", {"first_name": "x"}, "html") == "<b>x</b>"


def test_a_subject_stays_one_line_whatever_the_contact_holds() -> None:
    contact = {"first_name": "Ada\r\nBcc: everyone@example.com"}
    assert render("Hi {{ first_name }}", contact, "subject") == "Hi Ada Bcc: everyone@example.com"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ ''.__class__.__mro__ }}", "only for fields.<name>"),
        ("{{ config }}", "unknown variable 'config'"),
        ("{{ self }}", "unknown variable 'self'"),
        ("{{ cycler.__init__.__globals__ }}", "only for fields.<name>"),
        ("{{ lipsum() }}", "calls are not available"),
        ("{% for i in range(10**9) %}x{% endfor %}", "loops are not available"),
        ("{{ 'a' * 10**9 }}", "arithmetic is not available"),
        ("{{ 9**9**9 }}", "arithmetic is not available"),
        ("{{ first_name.ljust(1000000000) }}", "calls are not available"),
        ("{{ first_name|center(1000000000) }}", "unknown filter 'center'"),
        ("{{ first_name|safe }}", "unknown filter 'safe'"),
        ("{% set x = first_name %}{{ x }}", "{% set %} is not available"),
        ("{% macro m() %}{% endmacro %}", "macros are not available"),
        ("{% include 'x.html' %}", "{% include %} is not available"),
        ("{% extends 'base.html' %}", "{% extends %} is not available"),
        ("{% autoescape false %}{{ first_name }}{% endautoescape %}", "autoescape"),
        ("{{ fields.__class__ }}", "write fields['__class__']"),
        ("{{ fields.a.b }}", "only for fields.<name>"),
        ("{{ fields }}", "write fields.<name>"),
        ("{{ fields[first_name] }}", "quoted field name"),
        ("{{ [first_name] }}", "lists are not available"),
        ("{{ frist_name }}", "unknown variable 'frist_name'"),
        ("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}", "nest more than"),
        ("{{ " + "not " * 60 + "first_name }}", "nest more than"),
        ("<p>{{ " + "9" * 5000 + " }}</p>", "a number is too long"),
        ("{% if 1e400 %}a{% endif %}", "line 1: a number is too large"),
        ("{{ first_name|default(1e400) }}", "a number is too large"),
        ('<p>{{ first_name ~ "\\udc80" }}</p>', "line 1: a quoted text holds a character"),
        ("<p>\udfff</p>", "not valid Unicode (a lone surrogate)"),
    ],
)
def test_injection_and_resource_attempts_are_refused_when_saved(source: str, reason: str) -> None:
    with pytest.raises(Invalid) as caught:
        validate_template(source, "html", "steps.0.html", "step 1 html")
    assert caught.value.field == "steps.0.html"
    assert caught.value.message.startswith("step 1 html")
    assert reason in caught.value.message
    # Rendering checks the same rules: a template stored some other way cannot run either.
    with pytest.raises(Invalid):
        render(source, ADA, "html")


def test_errors_name_the_line() -> None:
    with pytest.raises(Invalid, match=r"^step 2 text, line 3: unknown variable 'compnay'"):
        validate_template("Hi,\n\n{{ compnay }}\n", "text", "steps.1.text", "step 2 text")
    with pytest.raises(Invalid, match=r"^step 1 html, line 2: unexpected '}'"):
        validate_template("<p>\n{{ first_name } }}</p>", "html", "steps.0.html", "step 1 html")
    with pytest.raises(Invalid, match=r"^x, line 2: Unexpected end of template.*'endif'"):
        validate_template("a\n{% if email %}\nb\n", "text", "x")


def test_size_limits() -> None:
    validate_template("x" * templates.MAX_SOURCE["html"], "html", "h")
    with pytest.raises(Invalid, match="at most 262144 characters"):
        validate_template("x" * (templates.MAX_SOURCE["html"] + 1), "html", "h")
    big = {"fields": {"blob": "y" * (templates.MAX_OUTPUT // 4 + 1)}}
    with pytest.raises(Invalid, match="longer than"):
        render("{{ fields.blob }}" * 4, big, "text")


def test_rendering_stops_at_the_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templates, "RENDER_SECONDS", -1.0)
    with pytest.raises(Invalid, match="took longer than"):
        render("{{ first_name }}", ADA, "text")


@pytest.mark.parametrize(
    # Jinja's ** groups from the left: 9**9**9 is (9**9)**9, small; 10**10**9 is not.
    "source",
    ["{{ 'a' * 10**9 }}", "{{ 10**1000000000 }}", "{{ [1] * 10**8 }}"],
)
def test_the_sandbox_is_a_second_wall_behind_the_checker(source: str) -> None:
    # Compiled without the checker, as if it had missed something: the sandbox still refuses.
    sandbox = templates._environment("text")
    started = time.monotonic()
    with pytest.raises(SecurityError):
        sandbox.from_string(source).render()
    assert time.monotonic() - started < 1
    assert sandbox.from_string("{{ '{0.__class__}'.format(1) }}").render() != "<class 'int'>"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ first_name|default(boolean=true) }}", "filter 'default' has no argument 'boolean'"),
        ("{{ first_name|truncate(foo=1) }}", "filter 'truncate' has no argument 'foo'"),
        ("{{ first_name|upper(1) }}", "filter 'upper' takes no arguments"),
        ("{{ first_name|title(x=1) }}", "filter 'title' has no argument 'x'"),
        ("{{ first_name|trim(1, 2, 3) }}", "filter 'trim' takes at most 1 argument, not 3"),
        ("{{ first_name|trim(1) }}", "filter 'trim': chars is quoted text"),
        ("{{ first_name|trim(fields.x) }}", "filter 'trim': chars is quoted text"),
        ("{{ first_name|urlencode('x') }}", "filter 'urlencode' takes no arguments"),
        ("{{ first_name|truncate('x') }}", "filter 'truncate': length is a whole number"),
        ("{{ first_name|truncate(2.5) }}", "filter 'truncate': length is a whole number"),
        ("{{ first_name|truncate(fields.n) }}", "filter 'truncate': length is a whole number"),
        ("{{ first_name|truncate(5, length=9) }}", "multiple values for argument 'length'"),
        ("{{ first_name|truncate(2) }}", "filter 'truncate': length is at least 3"),
        ("{{ first_name|truncate(9, end='ellipsis..') }}", "length is at least 10"),
        ("{{ 42|truncate }}", "filter 'truncate' works on text"),
        ("{{ first_name|d(7)|truncate(9) }}", "filter 'truncate' works on text"),
        ("{{ email is defined(1) }}", "test 'defined' takes no arguments"),
        ("{{ email is none(x=1) }}", "test 'none' has no argument 'x'"),
        ("{% if fields.seats > 10 %}big{% endif %}", "numbers with numbers can be ordered"),
        ("{% if none < first_name %}x{% endif %}", "numbers with numbers can be ordered"),
        ("{% if 5 in email %}x{% endif %}", "'in' looks for text in text"),
    ],
)
def test_calls_that_would_fail_for_every_contact_are_refused_when_saved(
    source: str, reason: str
) -> None:
    # Each of these raised a TypeError (or an AssertionError) for every contact at send time.
    with pytest.raises(Invalid) as caught:
        validate_template(f"<p>Hi,</p>\n{source}", "html", "steps.1.html", "step 2 html")
    assert caught.value.field == "steps.1.html"
    assert caught.value.message.startswith("step 2 html, line 2: ")
    assert reason in caught.value.message
    with pytest.raises(Invalid, match=r"^html, line 1: "):
        render(source, ADA, "html")


@pytest.mark.parametrize(
    ("source", "rendered"),
    [
        ("{{ first_name|default('there', ) }}", "Ada"),
        ("{{ fields.team|d(fallback='you') }}", "you"),
        ("{{ company|truncate(12) }}", "Analytica..."),
        ("{{ company|truncate(12, true, '~', 0) }}", "Analytical ~"),
        ("{{ company|truncate(length=12, killwords=1, end='', leeway=none) }}", "Analytical E"),
        ("{{ fields.missing|truncate(5) }}|{{ fields.plan|default('x')|truncate(5) }}", "|pro"),
        ("{{ ('-' ~ first_name ~ '-')|trim('-') }}|{{ last_name|trim(none) }}", "Ada|Lovelace"),
        (
            "{{ email is defined }} {{ fields.x is undefined }} {{ email is none }}",
            "True True False",
        ),
        ("{% if first_name > 'A' %}{% if 2 < 2.5 %}ordered{% endif %}{% endif %}", "ordered"),
        ("{% if 'example' in email %}in{% endif %}", "in"),
    ],
)
def test_calls_as_their_filters_take_them_still_render(source: str, rendered: str) -> None:
    validate_template(source, "html", "steps.0.html")
    assert render(source, ADA, "html") == rendered


def test_a_render_that_fails_otherwise_is_invalid_with_its_reason() -> None:
    # A value no form accepts (a lone surrogate), as if written into the database directly:
    # nothing in the template is wrong, the render fails, and says why.
    contact = {**ADA, "fields": {"plan": "pro\ud800"}}
    with pytest.raises(Invalid, match=r"^the html cannot be rendered: UnicodeEncodeError: "):
        render(
            "<a href='https://example.com/?p={{ fields.plan|urlencode }}'>x</a>", contact, "html"
        )
