"""A plain-text alternative for an HTML body when the author wrote none."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "hr"}
_SKIP = {"style", "script", "head", "title"}
_SPACES = re.compile(r"[ \t\r\f\v]+")
_LINE_END = re.compile(r" *\n *")
_BLANK_LINES = re.compile(r"\n{3,}")
# Text without these is tidy already (the regular expressions would leave it as it is), and
# looking for them costs a fraction of running the expressions.
_UNTIDY = ("  ", " \n", "\n ", "\n\n\n", "\t", "\r", "\f", "\v")


class TextParser(HTMLParser):
    """The text of an HTML document, with its blocks as line breaks and links as (URL)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skipping += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")
        elif tag == "a":
            self.href = dict(attrs).get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")
        elif tag == "a" and self.href and self.href.startswith(("http://", "https://")):
            self.parts.append(f" ({self.href})")
            self.href = None

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def tidy(text: str) -> str:
    """Runs of spaces as one, no spaces around line breaks, at most one blank line."""
    if any(untidy in text for untidy in _UNTIDY):
        text = _SPACES.sub(" ", text)
        text = _LINE_END.sub("\n", text)
        text = _BLANK_LINES.sub("\n\n", text)
    return text.strip() + "\n"


def html_to_text(html: str) -> str:
    parser = TextParser()
    parser.feed(html)
    parser.close()
    return tidy("".join(parser.parts))
