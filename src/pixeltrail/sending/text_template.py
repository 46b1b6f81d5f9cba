"""A step's plain-text alternative as a template, made once from its HTML template.

Converting every rendered HTML body to text (`html_to_text`) costs more than the rest of
composing a message. Instead, the HTML template is converted once: each of its tags
(`{{ ... }}`, `{% ... %}`) is replaced by a placeholder character, the result goes through the
same conversion, the tags are put back in the text, and everything else in the text is made
literal for the template engine (a `{{` that the HTML showed as `&#123;&#123;` stays text).
Rendered for a contact and tidied like `html_to_text` does, that is what `html_to_text` makes of
the HTML rendered for that contact: HTML bodies escape contact values, so a value reads as the
same text in both, and tidying the whitespace twice is tidying it once.

That holds only when the tags sit where their values cannot change how the HTML is read:
values in text or in quoted attribute values, never in a tag's name or between its attributes,
nor glued to `&` (an entity) or `<` (markup); `{% %}` tags in text outside any link, style or
script; a link whose href begins with a tag has its own fallback. For any other template,
`text_template` returns None and each rendered message is converted on its own.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from jinja2 import TemplateSyntaxError

from pixeltrail.platform.campaigns.templates import template_tokens, validate_template
from pixeltrail.platform.errors import Invalid
from pixeltrail.sending.plaintext import TextParser, tidy

_FIRST, _LAST = 0xE000, 0xF8FF  # the private use area: placeholders, one per tag
_PLACEHOLDER = re.compile("([\ue000-\uf8ff])")
# Text just before a placeholder that a value could complete into an entity or markup.
_GLUED = re.compile(r"(?:&[#A-Za-z0-9]*|<[/!?]?[^\s<>\"']*)\Z")
# A start tag whose placeholders can only be inside quoted attribute values.
_PLAIN_TAG = re.compile(
    r"<[A-Za-z][^\t\n\r\f />\x00\ue000-\uf8ff]*"
    r"(?:\s+[^\s/>=\"'\ue000-\uf8ff][^\s/>=\ue000-\uf8ff]*"
    r"(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`\ue000-\uf8ff]+))?)*"
    r"\s*/?>"
)
_LINK_SCHEMES = ("http://", "https://")


class _Unsure(Exception):
    """The template's text cannot be made once for every contact."""


@dataclass(frozen=True)
class _Tag:
    source: str
    control: bool  # {% %}: decides which text there is, not only what a value says


def _pieces(source: str) -> list[str | _Tag]:
    pieces: list[str | _Tag] = []
    inner: list[str] | None = None
    control = False
    try:
        for _, kind, value in template_tokens(source, "html"):
            if kind == "data":
                pieces.append(value)
            elif kind in ("variable_begin", "block_begin"):
                inner, control = [], kind == "block_begin"
            elif kind in ("variable_end", "block_end") and inner is not None:
                body = "".join(inner).strip()
                pieces.append(_Tag(f"{{% {body} %}}" if control else f"{{{{ {body} }}}}", control))
                inner = None
            elif inner is not None:
                inner.append(value)
            # comments, and the {% raw %} markers around their data, render nothing
    except TemplateSyntaxError:
        raise _Unsure from None
    return pieces


class _Checked(TextParser):
    """The text conversion, noting where each placeholder is read and refusing where a value
    could be read otherwise."""

    def __init__(self, tags: list[_Tag]) -> None:
        super().__init__()
        self.tags = tags
        self.seen: set[str] = set()
        self._in_tag = False

    def _placeholders(self, text: str) -> list[str]:
        found = _PLACEHOLDER.findall(text)
        self.seen.update(found)
        return found

    def _tag(self, char: str) -> _Tag:
        return self.tags[ord(char) - _FIRST]

    def parse_starttag(self, i: int) -> int:
        return self._inside_tag(super().parse_starttag, i)

    def parse_endtag(self, i: int) -> int:
        return self._inside_tag(super().parse_endtag, i)

    def _inside_tag(self, parse: Callable[[int], int], i: int) -> int:
        self._in_tag = True
        try:
            return parse(i)
        finally:
            self._in_tag = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raw = self.get_starttag_text() or ""
        found = self._placeholders(raw)
        if found and (any(self._tag(c).control for c in found) or not _PLAIN_TAG.fullmatch(raw)):
            raise _Unsure
        super().handle_starttag(tag, attrs)
        if tag == "a" and self.href:
            # Whether the link is shown depends on a value unless the text before it decides.
            before = _PLACEHOLDER.split(self.href, 1)[0]
            decided = before == self.href or before.startswith(_LINK_SCHEMES)
            if not decided and any(scheme.startswith(before) for scheme in _LINK_SCHEMES):
                raise _Unsure

    def handle_endtag(self, tag: str) -> None:
        if self._placeholders(tag):
            raise _Unsure
        super().handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        found = self._placeholders(data)
        if found:
            if self._in_tag or data.startswith("<"):
                raise _Unsure  # markup read as text: a value could make it markup
            pending_link = self.href is not None and self.href.startswith(_LINK_SCHEMES)
            if (self.skipping or pending_link) and any(self._tag(c).control for c in found):
                raise _Unsure
        super().handle_data(data)

    def _markup(self, text: str) -> None:
        if any(self._tag(c).control for c in self._placeholders(text)):
            raise _Unsure

    def handle_comment(self, data: str) -> None:
        self._markup(data)

    def handle_decl(self, decl: str) -> None:
        self._markup(decl)

    def handle_pi(self, data: str) -> None:
        self._markup(data)

    def unknown_decl(self, data: str) -> None:
        self._markup(data)


def _literal(text: str) -> str:
    return text.replace("{", "{{ '{' }}")


def _marked(pieces: list[str | _Tag]) -> tuple[str, list[_Tag]]:
    """The HTML with a placeholder for each tag, and the tags in placeholder order."""
    tags: list[_Tag] = []
    out: list[str] = []
    since: list[str] = []  # the text since the last placeholder
    for piece in pieces:
        if isinstance(piece, str):
            out.append(piece)
            since.append(piece)
            continue
        # Glued across a placeholder, it would already be glued at the one before.
        if _GLUED.search("".join(since)) or len(tags) > _LAST - _FIRST:
            raise _Unsure
        out.append(chr(_FIRST + len(tags)))
        tags.append(piece)
        since = []
    marked = "".join(out)
    if len(_PLACEHOLDER.findall(marked)) != len(tags):
        raise _Unsure  # the HTML has characters of its own that read as placeholders
    if _PLACEHOLDER.search(html.unescape(_PLACEHOLDER.sub(" ", marked))):
        raise _Unsure  # or references that do
    return marked, tags


def _convert(source: str) -> str:
    marked, tags = _marked(_pieces(source))
    parser = _Checked(tags)
    parser.feed(marked)
    parser.close()
    if len(parser.seen) != len(tags):
        raise _Unsure  # some were dropped where the parser skips markup
    text = tidy("".join(parser.parts))
    out = []
    for n, part in enumerate(_PLACEHOLDER.split(text)):
        out.append(tags[ord(part) - _FIRST].source if n % 2 else _literal(part))
    converted = "".join(out)
    try:
        validate_template(converted, "text", "text")
    except Invalid:
        raise _Unsure from None
    return converted


@lru_cache(maxsize=256)
def text_template(html_source: str) -> str | None:
    """The text template for an HTML template, or None when each message needs converting."""
    try:
        return _convert(html_source)
    except _Unsure:
        return None
    except Exception:  # whatever the conversion trips on, each message is converted instead
        return None
