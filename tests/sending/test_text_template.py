"""The text alternative made once per step reads as the one made from each rendered message."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest

from pixeltrail.platform.campaigns.templates import render, validate_template
from pixeltrail.platform.errors import Invalid
from pixeltrail.sending.plaintext import html_to_text, tidy
from pixeltrail.sending.text_template import text_template

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "emails"

CONTACTS: list[dict[str, Any]] = [
    {"first_name": "Ada", "last_name": "Lovelace", "company": "Acme", "email": "ada@example.org"},
    {"first_name": "", "last_name": "", "company": "", "email": "", "fields": {}},
    {
        "first_name": "  Bo \n\n\n\t Jo  ",
        "last_name": "<b>&amp;</b>",
        "company": "{{ email }} {% if 1 %}x{% endif %} &#123;",
        "email": 'o\'neil+"x"@example.org',
        "fields": {"plan": "https://example.net/a?b=1&c=2", "city": "São Paulo\r\n"},
    },
    {
        "first_name": "&",
        "last_name": "lt;",
        "company": "<",
        "email": "a b",
        "fields": {"plan": "-->"},
    },
]


def _same_text(html: str) -> None:
    converted = text_template(html)
    assert converted is not None
    for contact in CONTACTS:
        expected = html_to_text(render(html, contact, "html"))
        assert tidy(render(converted, contact, "text")) == expected


BASIC = (
    "<html><head><title>{{ company }}</title><style>p { color: red }</style></head><body>"
    "<h1>Hello {{ first_name | default('there') }}</h1>"
    "<p>Your plan: {{ fields.plan }}.</p>"
    "{% if company %}<p>From   <b>{{ company | upper }}</b></p>{% elif first_name %}<p>Hi</p>"
    "{% else %}<div>Nobody</div>{% endif %}"
    '<p><a href="https://example.com/p?e={{ email | urlencode }}&amp;x=1">see</a> and '
    "<a href='https://example.com/{{ first_name }}'>{{ last_name }}</a></p>"
    '<p>{{ fields.city }}</p><img src="https://img.example/{{ email }}.png" alt="{{ company }}">'
    "<!-- {{ first_name }} --><br/>bye</body></html>"
)


def test_an_ordinary_template_reads_the_same_for_every_contact() -> None:
    _same_text(BASIC)


def test_literal_braces_shown_in_the_html_stay_literal_in_the_text() -> None:
    html = "<p>&#123;&#123; first_name }} and &#123;% if 1 %} and {{ '{{' }} x {# note #}</p>"
    converted = text_template(html)
    assert converted is not None
    text = tidy(render(converted, CONTACTS[0], "text"))
    assert text == "{{ first_name }} and {% if 1 %} and {{ x\n"
    assert text == html_to_text(render(html, CONTACTS[0], "html"))


def test_whitespace_control_and_raw_blocks_render_as_in_the_html() -> None:
    _same_text(
        "<p>a   {%- if company -%}   <b>{{ company }}</b>   {%- endif %}  b</p>"
        "{% raw %}<p>{{ first_name }}</p>{% endraw %}<p>{{- first_name -}}</p>"
    )


@pytest.mark.parametrize(
    "html",
    [
        '<a href="{{ fields.plan }}">plan</a>',  # is it a link at all? the value decides
        '<a href="ht{{ fields.plan }}">plan</a>',
        "<p {{ company }}>x</p>",  # a value between attributes
        "<p class={{ company }}>x</p>",  # unquoted
        "<{{ company }}>x",
        "<p{{ company }}>x</p>",
        "</p{{ company }}>x",
        "x &{{ company }}; y",  # a value completing an entity
        "x &#{{ company }}; y",
        '<a href="https://x">{% if company %}a{% endif %}</a>',  # a block inside a link
        "<style>{% if company %}p{}{% endif %}</style>",
        "<!-- {% if company %} -->x<!-- {% endif %} -->",
        '<p title="{% if company %}a{% endif %}">x</p>',
        "{% if company %}<head>{% endif %}x",
        "<p>\ue000 {{ company }}</p>",  # characters the conversion uses as its own
        "<p>&#xE000; {{ company }}</p>",
    ],
)
def test_templates_a_value_could_read_otherwise_are_converted_per_message(html: str) -> None:
    validate_template(html, "html", "html")
    assert text_template(html) is None


def _corpus() -> list[tuple[str, str]]:
    found = []
    for path in sorted(CORPUS.glob("*.html")):
        html = path.read_text(encoding="utf-8", errors="replace")
        try:
            validate_template(html, "html", "html")
        except Invalid:  # other template languages' tags ({{#each}}) are not ours
            continue
        found.append((path.name, html))
    return found


def test_the_corpus_emails_with_merge_tags_read_the_same() -> None:
    corpus = _corpus()
    assert len(corpus) > 50
    for _, html in corpus:
        _same_text(html)
        tagged = html.replace(
            "<body", "{% if company %}<p>Hi {{ company }},</p>{% endif %}<body", 1
        ).replace("</body>", '<p><a href="https://x.example/?e={{ email }}">{{ first_name }}</a>')
        _same_text(tagged)


FRAGMENTS = [
    "<p>",
    "</p>",
    "<div>",
    "</div>",
    "<br>",
    "<li>",
    "<td>",
    "  ",
    "\n\n",
    " \t ",
    "text",
    "&amp;",
    "&#123;&#123;",
    "{{ '{' }}",
    "<b>",
    "</b>",
    "{{ first_name }}",
    "{{ company | default('you') }}",
    "{{ last_name | trim }}",
    '<a href="https://example.com/x?e={{ email }}">',
    '<a href="mailto:{{ email }}">',
    "</a>",
    '<img src="https://i.example/{{ first_name }}" alt="{{ company }}">',
    "<!-- {{ company }} -->",
    "<title>{{ company }}</title>",
]


def _random_template(rng: random.Random) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(1, 25)):
        if rng.random() < 0.15:
            inner = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 5)))
            other = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 3)))
            parts.append(f"{{% if company %}}{inner}{{% else %}}{other}{{% endif %}}")
        else:
            parts.append(rng.choice(FRAGMENTS))
    return "".join(parts)


def test_random_templates_read_the_same_or_are_converted_per_message() -> None:
    rng = random.Random(20261127)
    converted = 0
    for _ in range(400):
        html = _random_template(rng)
        validate_template(html, "html", "html")
        text = text_template(html)
        if text is None:
            continue
        converted += 1
        for contact in CONTACTS:
            assert tidy(render(text, contact, "text")) == html_to_text(
                render(html, contact, "html")
            ), html
    assert converted > 200


def test_tidy_text_is_left_as_it_is_and_other_text_is_tidied() -> None:
    rng = random.Random(7)
    alphabet = [" ", "\t", "\n", "\r", "a", "\xa0", "\f", "\v", "b"]
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        expected = re.sub(r"[ \t\r\f\v]+", " ", text)
        expected = re.sub(r" *\n *", "\n", expected)
        expected = re.sub(r"\n{3,}", "\n\n", expected).strip() + "\n"
        assert tidy(text) == expected, repr(text)
