"""Instrumentation throughput: pixeltrail's byte-exact scanner against pytracking, side by side.

Both implementations instrument the same inputs in the same run, interleaved round by round
(A/B, then B/A, ...), and the median messages per second of each is reported with their ratio,
because the machines this runs on are noisy. Rounds are timed in CPU time of the process
(both are single-threaded), which other processes on the machine disturb less than wall
time. Inputs: every HTML file of the shared email corpus, and a generated ~60 KB marketing
email with 40 links and an Outlook VML button.

pixeltrail keeps per-value caches (what a link value means, a destination's packed form),
as a campaign instruments one template for every recipient; it runs twice: as it is, and
with those caches emptied before every message ("cold").

Each output is also checked once, outside the timings: is it the input with only the link
values replaced and the pixel inserted (byte-exact), did the doctype and the comments survive?

    .venv/bin/python bench/instrument.py            # print the table
    .venv/bin/python bench/instrument.py --write    # and update docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import gc
import html
import importlib.metadata
import json
import math
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pixeltrail.tracking import htmlpart, tokens
from pixeltrail.tracking.htmlpart import instrument_html
from pixeltrail.tracking.keys import KeyRing
from pixeltrail.tracking.links import LinkBuilder
from pixeltrail.tracking.tokens import TokenSigner, new_message_id
from pixeltrail.tracking.tracker import MessageTracker, TrackingOptions

try:
    from pytracking import Configuration
    from pytracking.html import adapt_html
except ImportError as error:  # pragma: no cover - only without the bench group
    sys.exit(
        f"pytracking is not importable ({error}). It is in the `bench` dependency group, which\n"
        "a plain `uv sync` (as `make test` runs it) removes from .venv again; `make bench`\n"
        "reinstalls it, or: .tools/bin/uv sync --frozen --group bench"
    )

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "benchmarks.md"
BEGIN = "<!-- bench:instrument -->"
END = "<!-- /bench:instrument -->"
COMMAND = ".venv/bin/python bench/instrument.py --write"

BASE_URL = "https://t.example.com"
# A fixed, public benchmark key: tokens are signed exactly as in production, nothing is secret.
BENCH_SECRET = "bench-only-secret-key-0123456789"
GOAL_RATIO = 10.0
TIMES = "\N{MULTIPLICATION SIGN}"
GENERATED_TARGET_BYTES = 60 * 1024

# Output checks: tracking URLs of either implementation (pytracking pads its base64 with '=').
_TRACKING_URL = re.compile(re.escape(BASE_URL.encode()) + rb"/([co])/([A-Za-z0-9_\-=]+)")
_DOCTYPE = re.compile(rb"<!doctype[^>]*>", re.IGNORECASE)
_COMMENT = re.compile(rb"<!--[\s\S]*?-->")
_HREF_VALUE = re.compile(rb"""(href[\t\n\f\r ]*=[\t\n\f\r ]*)(?:"[^"]*"|'[^']*')""", re.IGNORECASE)
_URL_NOISE = re.compile(r"[\t\n\r]")
_META_CHARSET = re.compile(rb"""<meta[^>]*charset\s*=\s*["']?([A-Za-z0-9_.:\-]+)""", re.I)


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Message:
    """One input, as each implementation takes it: bytes for pixeltrail, text for pytracking."""

    name: str
    data: bytes
    text: str


@dataclass(frozen=True)
class Workload:
    label: str
    messages: tuple[Message, ...]


def _charset_of(data: bytes) -> str:
    match = _META_CHARSET.search(data, 0, 4096)
    return match.group(1).decode("ascii") if match else "utf-8"


def _message(name: str, data: bytes) -> Message:
    # pytracking's documented input is text; decoding happens once, outside the timings.
    try:
        text = data.decode(_charset_of(data), "replace")
    except LookupError:
        text = data.decode("utf-8", "replace")
    return Message(name, data, text)


def find_corpus(explicit: Path | None) -> Path:
    """The corpus folder: --corpus, else the one the tests use (tests/corpus/emails)."""
    folder = explicit or Path(__file__).resolve().parents[1] / "tests" / "corpus" / "emails"
    if not folder.is_dir():
        sys.exit(f"email corpus not found at {folder}; pass --corpus DIR")
    return folder


def load_corpus(folder: Path) -> Workload:
    files = sorted(folder.glob("*.html"))
    if not files:
        sys.exit(f"email corpus {folder}: no *.html files in it")
    messages = tuple(_message(f.name, f.read_bytes()) for f in files)
    size = sum(len(m.data) for m in messages)
    return Workload(f"corpus ({len(messages)} files, {size / 1024:.0f} KiB)", messages)


# ---------------------------------------------------------------- generated email

_SHOP = "https://www.northwind-outfitters.com"
_UTM = "utm_source=newsletter&amp;utm_medium=email&amp;utm_campaign=2024-06-summer"
_FONT = "font-family:Helvetica,Arial,sans-serif"
_PRODUCTS = (
    (
        "Alpine Trail Jacket",
        "alpine-trail-jacket",
        "189.00",
        "Waterproof, breathable, packs into its own pocket.",
    ),
    (
        "Ridge Merino Base Layer",
        "ridge-merino-base-layer",
        "74.00",
        "Soft 200 g/m² merino that keeps you warm when wet.",
    ),
    (
        "Summit 38 L Backpack",
        "summit-38l-backpack",
        "142.00",
        "A ventilated back panel and a lid that doubles as a day bag.",
    ),
    (
        "Canyon Hiking Boot",
        "canyon-hiking-boot",
        "165.00",
        "Vibram soles, leather uppers, broken in on day one.",
    ),
    (
        "Drift Down Vest",
        "drift-down-vest",
        "119.00",
        "650-fill responsibly sourced down; weighs less than an apple.",
    ),
    (
        "Harbor Rain Shell",
        "harbor-rain-shell",
        "98.00",
        "Taped seams and a hood that turns with your head.",
    ),
    (
        "Pine Flannel Shirt",
        "pine-flannel-shirt",
        "59.00",
        "Brushed organic cotton, cut for layering.",
    ),
    (
        "Tundra Insulated Bottle",
        "tundra-insulated-bottle",
        "32.00",
        "Keeps coffee hot for 12 hours, water cold for 24.",
    ),
    (
        "Basecamp 2P Tent",
        "basecamp-2p-tent",
        "329.00",
        "Pitches in four minutes; two doors, two vestibules.",
    ),
    (
        "Lakeside Camp Chair",
        "lakeside-camp-chair",
        "64.00",
        "Folds to the size of a water bottle, holds 140 kg.",
    ),
    (
        "Glacier Trekking Poles",
        "glacier-trekking-poles",
        "89.00",
        "Carbon shafts with cork grips and flick locks.",
    ),
    ("Ember Headlamp", "ember-headlamp", "45.00", "400 lumens, red night mode, USB-C charging."),
)
_ARTICLES = (
    ("How to layer for a summer alpine start", "2024/06/layering-for-alpine-starts"),
    ("Five overnight hikes within two hours of the city", "2024/06/five-overnight-hikes"),
    ("Caring for down: washing, drying, storing", "2024/05/caring-for-down"),
    ("Leave no trace, explained in ten minutes", "2024/05/leave-no-trace-explained"),
)
_FILLER = (
    "Prices include VAT where applicable and are valid while stocks last.",
    "Free standard delivery on orders over €75 to mainland addresses; express delivery is "
    "charged at checkout.",
    "Returns are free within 60 days of delivery, unworn and with their tags attached.",
    "Members earn 5 points per euro spent; points expire 24 months after they were earned.",
    "Colours may look different on your screen than in real life.",
    "The summer sale runs from 3 June 2024 at 09:00 until 30 June 2024 at 23:59 (CEST).",
    "Discounts cannot be combined with other offers or applied to gift cards.",
    "Northwind Outfitters GmbH, Bergstraße 12, 80331 München — registered at Amtsgericht "
    "München, HRB 123456.",
)


def _button(url: str, label: str, color: str) -> str:
    return (
        f'<table role="presentation" border="0" cellpadding="0" cellspacing="0" '
        f'style="margin:0 auto;"><tr><td class="button-td" style="border-radius:4px;'
        f'background:{color};"><a class="button-a" href="{url}" style="background:{color};'
        f"border:1px solid {color};{_FONT};font-size:15px;line-height:15px;text-decoration:none;"
        f'padding:13px 17px;color:#ffffff;display:block;border-radius:4px;">{label}</a>'
        f"</td></tr></table>"
    )


def _product_cell(index: int, name: str, slug: str, price: str, blurb: str) -> str:
    base = f"{_SHOP}/products/{slug}?variant={4100 + index}&amp;{_UTM}&amp;utm_content"
    image = f"https://cdn.northwind-outfitters.com/img/products/{slug}-600x600.jpg"
    return (
        f'<td class="stack-column-center" width="50%" valign="top" style="padding:10px;">'
        f'<table role="presentation" width="100%" border="0" cellpadding="0" cellspacing="0">'
        f'<tr><td style="padding:0;text-align:center;"><a href="{base}=product-{index}-image" '
        f'target="_blank"><img src="{image}" width="270" height="270" alt="{name}" border="0" '
        f'class="fluid" style="width:100%;max-width:270px;height:auto;background:#dddddd;'
        f'{_FONT};font-size:15px;line-height:15px;color:#555555;"></a></td></tr>'
        f'<tr><td class="center-on-narrow" style="{_FONT};font-size:15px;line-height:20px;'
        f'color:#555555;padding:10px 10px 0;text-align:left;"><p style="margin:0 0 4px 0;'
        f'font-weight:bold;color:#111111;">{name}</p><p style="margin:0 0 10px 0;">{blurb} '
        f'Available in four colours and sizes XS\N{EN DASH}XXL.</p><p style="margin:0 0 12px 0;'
        f'color:#c0392b;font-weight:bold;">€{price}</p></td></tr>'
        f'<tr><td style="padding:0 10px 10px;">'
        + _button(f"{base}=product-{index}-button", "Shop now", "#2f6f4e")
        + "</td></tr></table></td>\n"
    )


def generated_email() -> bytes:
    """A table-based marketing email: 40 distinct https links, some with `&amp;`, a VML button.

    Built from fixed text (no randomness), so every run instruments the same bytes.
    """
    hero = f"{_SHOP}/collections/summer-sale?sort=featured&amp;{_UTM}&amp;utm_content=hero"
    nav = [
        (label, f"{_SHOP}/{path}?{_UTM}&amp;utm_content=nav-{path}")
        for label, path in (("Women", "women"), ("Men", "men"), ("Gear", "gear"), ("Sale", "sale"))
    ]
    parts = [
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:v="urn:schemas-microsoft-com:vml" '
        'xmlns:o="urn:schemas-microsoft-com:office:office" lang="en">\n<head>\n'
        '<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta http-equiv="X-UA-Compatible" content="IE=edge">\n'
        '<meta name="x-apple-disable-message-reformatting">\n'
        "<title>Summer sale: up to 40% off trail gear</title>\n"
        "<!--[if gte mso 9]><xml><o:OfficeDocumentSettings><o:AllowPNG/>"
        "<o:PixelsPerInch>96</o:PixelsPerInch></o:OfficeDocumentSettings></xml><![endif]-->\n"
        "<!--[if mso]><style>* { font-family: sans-serif !important; }</style><![endif]-->\n"
        '<style type="text/css">\n'
        "  html, body { margin: 0 auto !important; padding: 0 !important; height: 100% !important;"
        " width: 100% !important; }\n"
        "  * { -ms-text-size-adjust: 100%; -webkit-text-size-adjust: 100%; }\n"
        '  div[style*="margin: 16px 0"] { margin: 0 !important; }\n'
        "  table, td { mso-table-lspace: 0pt !important; mso-table-rspace: 0pt !important; }\n"
        "  table { border-spacing: 0 !important; border-collapse: collapse !important;"
        " table-layout: fixed !important; margin: 0 auto !important; }\n"
        "  img { -ms-interpolation-mode: bicubic; }\n"
        "  a { text-decoration: none; }\n"
        "  a[x-apple-data-detectors], .unstyle-auto-detected-links a { border-bottom: 0 !important;"
        " cursor: default !important; color: inherit !important; text-decoration: none !important;"
        " font-size: inherit !important; font-family: inherit !important; }\n"
        "  .button-td, .button-a { transition: all 100ms ease-in; }\n"
        "  .button-td-primary:hover, .button-a-primary:hover { background: #555555 !important;"
        " border-color: #555555 !important; }\n"
        "  @media screen and (max-width: 600px) {\n"
        "    .email-container { width: 100% !important; margin: auto !important; }\n"
        "    .fluid { max-width: 100% !important; height: auto !important;"
        " margin-left: auto !important; margin-right: auto !important; }\n"
        "    .stack-column, .stack-column-center { display: block !important;"
        " width: 100% !important; max-width: 100% !important; direction: ltr !important; }\n"
        "    .center-on-narrow { text-align: center !important; display: block !important;"
        " margin-left: auto !important; margin-right: auto !important; float: none !important; }\n"
        "  }\n"
        "</style>\n</head>\n"
        '<body width="100%" style="margin:0;padding:0 !important;mso-line-height-rule:exactly;'
        'background-color:#f1f1ef;">\n'
        '<center role="article" aria-roledescription="email" lang="en" style="width:100%;'
        'background-color:#f1f1ef;">\n'
        '<!--[if mso | IE]><table role="presentation" border="0" cellpadding="0" '
        'cellspacing="0" width="100%" style="background-color:#f1f1ef;"><tr><td><![endif]-->\n'
        "<!-- Preheader: shown in the inbox list, hidden in the body -->\n"
        '<div style="max-height:0;overflow:hidden;mso-hide:all;" aria-hidden="true">'
        "Up to 40% off jackets, packs and tents — this week only.</div>\n"
        '<div style="max-width:600px;margin:0 auto;" class="email-container">\n'
        '<!--[if mso]><table align="center" role="presentation" cellspacing="0" cellpadding="0" '
        'border="0" width="600"><tr><td><![endif]-->\n'
        '<table align="center" role="presentation" cellspacing="0" cellpadding="0" border="0" '
        'width="100%" style="margin:auto;">\n'
        # View in browser + logo + navigation.
        f'<tr><td style="padding:10px 0;text-align:right;{_FONT};font-size:12px;color:#888888;">'
        f'Trouble reading this email? <a href="https://view.northwind-outfitters.com/m/2024-06-'
        f'summer?id=8f3a2c91&amp;lang=en" style="color:#888888;text-decoration:underline;">View it '
        f"in your browser</a></td></tr>\n"
        f'<tr><td style="padding:20px 0;text-align:center;"><a href="{_SHOP}/?{_UTM}&amp;'
        f'utm_content=logo"><img src="https://cdn.northwind-outfitters.com/img/logo-400x100.png" '
        f'width="200" height="50" alt="Northwind Outfitters" border="0" style="height:auto;'
        f'background:#dddddd;{_FONT};font-size:15px;line-height:15px;color:#555555;"></a>'
        f"</td></tr>\n"
        '<tr><td style="padding:0 0 20px;text-align:center;">'
        + " &nbsp;|&nbsp; ".join(
            f'<a href="{url}" style="{_FONT};font-size:14px;color:#2f6f4e;font-weight:bold;'
            f'text-decoration:none;">{label}</a>'
            for label, url in nav
        )
        + "</td></tr>\n"
        # Hero with a bulletproof button: VML for Outlook, a plain link for everyone else.
        f'<tr><td style="background-color:#ffffff;"><img src="https://cdn.northwind-outfitters.com'
        f'/img/hero-summer-1200x600.jpg" width="600" height="" alt="Summer sale" border="0" '
        f'style="width:100%;max-width:600px;height:auto;background:#dddddd;margin:auto;display:'
        f'block;" class="g-img"></td></tr>\n'
        f'<tr><td style="padding:20px;{_FONT};font-size:15px;line-height:20px;color:#555555;'
        f'background-color:#ffffff;"><h1 style="margin:0 0 10px 0;{_FONT};font-size:25px;'
        f'line-height:30px;color:#333333;font-weight:normal;">Up to 40% off everything you need '
        f'for the trail</h1><p style="margin:0;">Long days are here. Our summer sale takes up to '
        f"40% off jackets, packs, tents and boots — including this "
        f"season\N{RIGHT SINGLE QUOTATION MARK}s bestsellers. "
        f"Members get free express delivery until Sunday.</p></td></tr>\n"
        f'<tr><td style="padding:0 20px 20px;background-color:#ffffff;">'
        f'<div style="text-align:center;"><!--[if mso]>\n'
        f'<v:roundrect xmlns:v="urn:schemas-microsoft-com:vml" '
        f'xmlns:w="urn:schemas-microsoft-com:office:word" href="{hero}" '
        f'style="height:48px;v-text-anchor:middle;width:240px;" arcsize="10%" stroke="f" '
        f'fillcolor="#2f6f4e">\n<w:anchorlock/>\n<center style="color:#ffffff;'
        f'font-family:sans-serif;font-size:16px;font-weight:bold;">Shop the sale</center>\n'
        f"</v:roundrect>\n<![endif]-->"
        f'<a href="{hero}" style="background-color:#2f6f4e;border-radius:4px;color:#ffffff;'
        f"display:inline-block;font-family:sans-serif;font-size:16px;font-weight:bold;"
        f"line-height:48px;text-align:center;text-decoration:none;width:240px;"
        f'-webkit-text-size-adjust:none;mso-hide:all;">Shop the sale</a></div></td></tr>\n',
    ]
    # Products, two per row.
    parts.append(
        '<tr><td style="padding:10px;background-color:#ffffff;"><table role="presentation" '
        'cellspacing="0" cellpadding="0" border="0" width="100%">\n'
    )
    for row in range(0, len(_PRODUCTS), 2):
        parts.append("<tr>\n<!-- product row -->\n")
        for index in (row, row + 1):
            name, slug, price, blurb = _PRODUCTS[index]
            parts.append(_product_cell(index + 1, name, slug, price, blurb))
        parts.append("</tr>\n")
    parts.append("</table></td></tr>\n")
    # Journal articles.
    parts.append(
        f'<tr><td style="padding:20px;background-color:#f7f7f5;{_FONT};font-size:15px;'
        f'line-height:20px;color:#555555;"><h2 style="margin:0 0 10px 0;font-size:20px;'
        f'color:#333333;">From the journal</h2>\n'
    )
    for title, path in _ARTICLES:
        parts.append(
            f'<p style="margin:0 0 12px 0;"><a href="https://journal.northwind-outfitters.com/'
            f'{path}?{_UTM}&amp;utm_content=journal" style="color:#2f6f4e;font-weight:bold;">'
            f"{title}</a><br>Stories and know-how from our guides and the people who test our "
            f"gear in the Alps, the Highlands and the Dolomites.</p>\n"
        )
    parts.append("</td></tr>\n")
    # Social links: raw '&' here, as many editors write them.
    social = (
        (
            "Instagram",
            "https://www.instagram.com/northwindoutfitters/?utm_source=newsletter&utm_medium=email",
        ),
        ("Facebook", "https://www.facebook.com/northwindoutfitters?ref=email&utm_medium=email"),
        (
            "YouTube",
            "https://www.youtube.com/@northwindoutfitters?sub_confirmation=1&utm_medium=email",
        ),
    )
    parts.append('<tr><td style="padding:20px;text-align:center;">')
    for label, url in social:
        icon = label.lower()
        parts.append(
            f'<a href="{url}" style="margin:0 6px;"><img src="https://cdn.northwind-outfitters.com'
            f'/img/social/{icon}-64.png" width="32" height="32" alt="{label}" border="0"></a>'
        )
    parts.append("</td></tr>\n")
    footer_links = (
        (
            "Manage your email preferences",
            "https://www.northwind-outfitters.com/account/email-"
            "preferences?list=weekly&amp;token=Zm9vYmFyYmF6cXV4",
        ),
        (
            "Unsubscribe",
            "https://www.northwind-outfitters.com/unsubscribe?list=weekly&amp;u=93412"
            "&amp;sig=4f1c2a9e",
        ),
    )
    parts.append(
        f'<tr><td style="padding:20px;{_FONT};font-size:12px;line-height:15px;text-align:center;'
        f'color:#888888;"><p style="margin:0 0 8px 0;">You are receiving this email because you '
        f'signed up for the Northwind newsletter.</p><p style="margin:0 0 8px 0;">'
        + " · ".join(
            f'<a href="{url}" style="color:#888888;text-decoration:underline;">{label}</a>'
            for label, url in footer_links
        )
        + "</p>\n"
    )
    closing = (
        "</td></tr>\n</table>\n<!--[if mso]></td></tr></table><![endif]-->\n</div>\n"
        "<!--[if mso | IE]></td></tr></table><![endif]-->\n</center>\n</body>\n</html>\n"
    )
    # The legal small print fills the message up to its target size, deterministically.
    size = len("".join(parts).encode()) + len(closing)
    sentence = 0
    while size < GENERATED_TARGET_BYTES:
        paragraph = f'<p style="margin:0 0 6px 0;">{_FILLER[sentence % len(_FILLER)]}</p>\n'
        parts.append(paragraph)
        size += len(paragraph.encode())
        sentence += 1
    parts.append(closing)
    return "".join(parts).encode("utf-8")


# ------------------------------------------------------------------ implementations

Instrument = Callable[[Message], object]


@dataclass(frozen=True)
class Outcome:
    """What one instrumented message looks like next to its input."""

    links: int
    exact: bool
    reason: str
    doctype: bool | None  # None: the input has none
    comments: int
    comments_kept: int


@dataclass(frozen=True)
class Implementation:
    name: str
    run: Instrument
    check: Callable[[Message], Outcome]


def pixeltrail_impl(cold: bool = False) -> Implementation:
    links = LinkBuilder(BASE_URL, TokenSigner(KeyRing.parse(BENCH_SECRET)))
    options = TrackingOptions()

    def tracker() -> MessageTracker:
        return MessageTracker(links, new_message_id(), options)

    def run(message: Message) -> bytes:
        if cold:  # every message as if it were the first with its links
            htmlpart._destination.cache_clear()
            tokens._packed_destination.cache_clear()
        return instrument_html(message.data, tracker())

    def check(message: Message) -> Outcome:
        t = tracker()
        out = instrument_html(message.data, t)
        destinations = {link.url.encode("ascii"): link.destination for link in t.tracked}
        return inspect(message.data, out, destinations.get)

    return Implementation("pixeltrail (cold caches)" if cold else "pixeltrail", run, check)


def pytracking_impl() -> Implementation:
    # As pytracking's README configures it: base URLs once, message metadata per call.
    configuration = Configuration(
        base_open_tracking_url=BASE_URL + "/o/", base_click_tracking_url=BASE_URL + "/c/"
    )

    def run(message: Message) -> str:
        return str(
            adapt_html(message.text, {"message_id": new_message_id()}, configuration=configuration)
        )

    def check(message: Message) -> Outcome:
        out = run(message).encode("utf-8")
        return inspect(message.data, out, _pytracking_destination)

    return Implementation(f"pytracking {importlib.metadata.version('pytracking')}", run, check)


def _pytracking_destination(url: bytes) -> str | None:
    token = url.rsplit(b"/", 1)[1]
    try:
        data = json.loads(base64.urlsafe_b64decode(token))
    except (binascii.Error, ValueError):
        return None
    destination = data.get("url") if isinstance(data, dict) else None
    return destination if isinstance(destination, str) else None


# ---------------------------------------------------------------------- checks


def inspect(
    original: bytes, output: bytes, destination_of: Callable[[bytes], str | None]
) -> Outcome:
    """Compare an output with its input: tracked links, byte-exactness, doctype, comments."""
    clicks = [m for m in _TRACKING_URL.finditer(output) if m.group(1) == b"c"]
    exact, reason = _byte_exact(original, output, clicks, destination_of)
    doctype = _DOCTYPE.search(original)
    skeleton = _HREF_VALUE.sub(rb'\1""', output)
    comments = _COMMENT.findall(original)
    kept = sum(1 for c in comments if _HREF_VALUE.sub(rb'\1""', c) in skeleton)
    return Outcome(
        links=len(clicks),
        exact=exact,
        reason=reason,
        doctype=None if doctype is None else doctype.group(0) in output,
        comments=len(comments),
        comments_kept=kept,
    )


def _byte_exact(
    original: bytes,
    output: bytes,
    clicks: Sequence[re.Match[bytes]],
    destination_of: Callable[[bytes], str | None],
) -> tuple[bool, str]:
    """Is `output` the input with only tracked href values replaced and one pixel inserted?

    The output is cut at the click URLs and at the pixel `<img>`; every piece between
    them must stand in the input in the same order, the input between two pieces must be
    nothing (the pixel) or a value that decodes to the destination its token carries.
    """
    edits: list[tuple[int, int, str | None]] = []
    for m in clicks:
        destination = destination_of(m.group(0))
        if destination is None:
            return False, f"a click URL at {m.start()} carries no readable destination"
        edits.append((m.start(), m.end(), destination))
    opens = [m for m in _TRACKING_URL.finditer(output) if m.group(1) == b"o"]
    if len(opens) != 1:
        return False, f"{len(opens)} open pixels"
    start = output.rfind(b"<img", 0, opens[0].start())
    stop = output.find(b">", opens[0].end()) + 1
    if start < 0 or stop <= 0:
        return False, "the open pixel is not in an <img> tag"
    edits.append((start, stop, None))
    edits.sort()
    pieces, last = [], 0
    for begin, end, _ in edits:
        pieces.append(output[last:begin])
        last = end
    pieces.append(output[last:])

    pos = 0
    charset = _charset_of(original)
    for i, (_, _, destination) in enumerate(edits):
        piece, following = pieces[i], pieces[i + 1]
        if not original.startswith(piece, pos):
            return False, _first_difference(original, output, pos, piece)
        pos += len(piece)
        if destination is None:
            continue  # the pixel is inserted, it replaces nothing
        found = original.find(following, pos) if following else len(original)
        if found < 0:
            return False, _first_difference(original, output, pos, following)
        value = original[pos:found].decode(charset, "replace")
        if _URL_NOISE.sub("", html.unescape(value).strip()) != destination:
            return False, f"replaced value {value!r} is not the tracked {destination!r}"
        pos = found
    if original[pos:] != pieces[-1]:
        return False, _first_difference(original, output, pos, pieces[-1])
    return True, ""


def _first_difference(original: bytes, output: bytes, pos: int, piece: bytes) -> str:
    offset = next(
        (i for i, (a, b) in enumerate(zip(original[pos:], piece, strict=False)) if a != b),
        min(len(original) - pos, len(piece)),
    )
    at = pos + offset
    return (
        f"input byte {at} {original[at : at + 24]!r} "
        f"became {piece[offset : offset + 24]!r} (output {len(output)} bytes)"
    )


# ---------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Result:
    implementation: str
    workload: Workload
    rates: tuple[float, ...]  # messages per second, one per round
    outcomes: tuple[Outcome, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


def _time(run: Instrument, messages: Sequence[Message], passes: int) -> float:
    """CPU seconds of this process: other processes on a shared machine inflate it less."""
    gc.collect()
    start = time.process_time()
    for _ in range(passes):
        for message in messages:
            run(message)
    return time.process_time() - start


def measure(
    implementations: Sequence[Implementation], workload: Workload, rounds: int, min_time: float
) -> list[Result]:
    """Median messages/s of each implementation, interleaved: A B, B A, A B, ..."""
    messages = workload.messages
    passes = []
    for impl in implementations:  # warm up, and size a round to last about `min_time`
        once = _time(impl.run, messages, 1)
        passes.append(max(1, math.ceil(min_time / max(once, 1e-9))))
    rates: list[list[float]] = [[] for _ in implementations]
    for round_ in range(rounds):
        order = range(len(implementations))
        for i in order if round_ % 2 == 0 else reversed(order):
            elapsed = _time(implementations[i].run, messages, passes[i])
            rates[i].append(passes[i] * len(messages) / elapsed)
    return [
        Result(impl.name, workload, tuple(r), tuple(impl.check(m) for m in messages))
        for impl, r in zip(implementations, rates, strict=True)
    ]


# ---------------------------------------------------------------------- report


def _count(values: Sequence[bool | None]) -> str:
    relevant = [v for v in values if v is not None]
    if not relevant:
        return "n/a"
    return f"{sum(relevant)}/{len(relevant)}"


def _row(result: Result, first: bool) -> str:
    outcomes = result.outcomes
    n = len(outcomes)
    links = sum(o.links for o in outcomes) / n
    exact = sum(o.exact for o in outcomes)
    byte_exact = "yes" if exact == n else ("no" if exact == 0 else "partly")
    comments = sum(o.comments for o in outcomes)
    kept = sum(o.comments_kept for o in outcomes)
    label = result.workload.label if first else ""
    return (
        f"| {label} | {result.implementation} | {result.median:,.0f} | "
        f"{min(result.rates):,.0f} to {max(result.rates):,.0f} | {links:.1f} | "
        f"{byte_exact} ({exact}/{n}) | {_count([o.doctype for o in outcomes])} | "
        f"{kept}/{comments} |"
    )


def report(results: Sequence[Sequence[Result]], rounds: int) -> str:
    lines = [
        f"| input | implementation | messages/s (median of {rounds}) | range | links tracked "
        f"per message | byte-exact | doctype kept | comments kept |",
        "| --- | --- | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for pair in results:
        lines += [_row(r, i == 0) for i, r in enumerate(pair)]
    lines.append("")
    for *ours, pytracking in results:
        for pixeltrail in ours:
            ratio = pixeltrail.median / pytracking.median
            verdict = "met" if ratio >= GOAL_RATIO else "not met"
            lines.append(
                f"- {pixeltrail.workload.label}: {pixeltrail.implementation} / pytracking = "
                f"**{ratio:.2f}{TIMES}** "
                f"(goal \N{GREATER-THAN OR EQUAL TO} {GOAL_RATIO:.0f}{TIMES}: {verdict})"
            )
    failures = [
        (r.implementation, m.name, o.reason)
        for pair in results
        for r in pair
        for m, o in zip(r.workload.messages, r.outcomes, strict=True)
        if not o.exact
    ]
    first: dict[str, tuple[str, str]] = {}
    for implementation, name, reason in failures:
        first.setdefault(implementation, (name, reason))
    for implementation, (name, reason) in first.items():
        lines.append(f"- first non-exact output of {implementation}: `{name}`: {reason}")
    return "\n".join(lines)


def environment() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or cpu
    versions = ", ".join(
        f"{package} {importlib.metadata.version(package)}" for package in ("pytracking", "lxml")
    )
    return (
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC with `{COMMAND}`: "
        f"Python {platform.python_version()} ({platform.python_implementation()}), {versions}, "
        f"{cpu}."
    )


DOC_INTRO = f"""# Benchmarks

Everything between the `<!-- bench:... -->` markers below is written by the scripts in
`bench/`, never by hand. `make bench` installs the pinned `bench` dependency group and prints
the results; once it has, this prints them and rewrites the marked section too:

    {COMMAND}

Implementations that are compared run side by side in the same process, interleaved round by
round (A then B, then B then A, ...); each round times enough messages to last at least half a
second, and the report gives the median messages per second of each, the range over the
rounds, and the ratio of the medians. These machines are noisy: compare ratios from one run,
not absolute numbers from different runs.

## Instrumenting HTML: pixeltrail against pytracking

`bench/instrument.py` instruments (a) every `*.html` file of the email corpus in
`shared/corpus/emails` beside the checkout (or `--corpus DIR`), one file per message, and
(b) a generated ≈60 KiB table-based marketing email built by the script from fixed text:
40 distinct https links with query strings (`&amp;` in most of them), and an Outlook
conditional comment holding a VML button that repeats the hero link.

- pixeltrail: `instrument_html(bytes, tracker)` with a new `MessageTracker` (and message id)
  per message and one shared `LinkBuilder`, default options (clicks and the open pixel).
- pytracking: `pytracking.html.adapt_html(text, {{"message_id": ...}}, configuration=...)` with
  one `Configuration` holding the open and click base URLs and a metadata dict per message,
  as its README shows. It gets the same document as text, its documented input, decoded once
  outside the timings.

Every output is also checked once, outside the timings. *byte-exact*: the output is the input
with only link values replaced and the pixel inserted, each replaced value decoding to the
destination its token carries. *doctype kept*: the input's doctype is in the output verbatim.
*comments kept*: comments of the input found verbatim in the output (href values in them
masked, since pixeltrail tracks VML links in conditional comments). *links tracked per
message*: click URLs in the output. pixeltrail also tracks `<area>` and VML hrefs and leaves
URLs without a host alone; pytracking tracks only `<a href>`, but also scheme-relative
`//host` links and `href="http://"` placeholders, which some corpus templates hold.

pytracking 0.2.2 imports and runs on Python 3.11 with the locked lxml 6 (checked with warnings
turned into errors), so the benchmark needs no workaround for it. If it is missing, a plain
`uv sync` has removed the `bench` group from `.venv` again (`uv sync` is exact, and
`make test` runs it); `make bench` reinstalls it. pytracking re-serializes the document with
lxml, so none of its outputs is byte-exact: the doctype is dropped, and so is the
`<meta http-equiv="Content-Type">` charset declaration; non-ASCII characters come back as
numeric character references (inside comments too, where nothing decodes them again), CRLF
line endings as LF, and tags and attributes as lxml writes them.

{BEGIN}
{END}
"""


def write_docs(section: str) -> None:
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else DOC_INTRO
    begin, end = text.find(BEGIN), text.find(END)
    if begin < 0 or end < begin:
        text = text.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n"
        begin, end = text.find(BEGIN), text.find(END)
    text = text[: begin + len(BEGIN)] + "\n" + section + "\n" + text[end:]
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, help="folder of *.html emails")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per implementation")
    parser.add_argument(
        "--min-time", type=float, default=0.5, help="seconds each timed round lasts at least"
    )
    parser.add_argument("--write", action="store_true", help=f"update {DOCS.name} too")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.min_time <= 0:
        parser.error("--rounds must be at least 1 and --min-time positive")

    generated = generated_email()
    workloads = [
        load_corpus(find_corpus(args.corpus)),
        Workload(
            f"generated email ({len(generated) / 1024:.0f} KiB, 40 links)",
            (_message("generated", generated),),
        ),
    ]
    implementations = [pixeltrail_impl(), pixeltrail_impl(cold=True), pytracking_impl()]
    results = [measure(implementations, w, args.rounds, args.min_time) for w in workloads]
    section = environment() + "\n\n" + report(results, args.rounds)
    print(section)
    if args.write:
        write_docs(section)
        print(f"\nwrote {DOCS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
