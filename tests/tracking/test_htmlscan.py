"""The compiled HTML scan finds exactly what the Python reference finds, on any input."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixeltrail.tracking import htmlscan
from pixeltrail.tracking.htmlpart import instrument_html
from pixeltrail.tracking.htmlscan import IMAGE, LINK, scan_python

from ..conftest import CORPUS, TrackerFactory

FILES = sorted(CORPUS.glob("*.html"))

# Fragments that make the scanner change state, so random joins of them hit its corners.
_FRAGMENTS = [
    b"<", b">", b"/", b"=", b'"', b"'", b" ", b"\t", b"\n", b"\r", b"\f", b"\x0b", b"\x00",
    b"\xff", b"\xc3", b"-", b"!", b"?", b"]", b"[", b"x", b"A",
    b"a", b"A", b"area", b"AREA", b"img", b"IMG", b"v:roundrect", b"V:RECT", b"v:", b"div",
    b"body", b"BODY", b"script", b"style", b"textarea", b"title", b"xmp", b"iframe",
    b"noembed", b"noframes", b"plaintext",
    b"href", b"HREF", b"src", b"data-track", b"DATA-TRACK", b"off", b"https://a.example/?a=1&amp;b",
    b"<a ", b"<a href=", b'<a href="', b"<area href='", b"<img src=", b"<v:rect href=",
    b"</a>", b"</body>", b"</BODY >", b"</body", b"</script>", b"</", b"<!", b"<?", b"<!DOCTYPE",
    b"<!--", b"-->", b"--!>", b"<!-->", b"<!--->", b"<!--[if mso]>", b"<!--[IF !mso]>",
    b"[if", b"]>", b"<![endif]", b"<![ENDIF]", b"<![endif] -->", b"<![endif]-->",
]  # fmt: skip
_HTMLISH = st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.binary(max_size=3)), max_size=60).map(
    b"".join
)


def _same_scan(data: bytes) -> None:
    from pixeltrail.tracking import _htmlscan

    for with_img in (False, True):
        assert _htmlscan.scan(data, with_img) == scan_python(data, with_img), (data, with_img)


def test_the_compiled_scanner_is_the_one_in_use() -> None:
    from pixeltrail.tracking import _htmlscan

    assert htmlscan.scan is _htmlscan.scan


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_corpus_scans_the_same(path: Path) -> None:
    _same_scan(path.read_bytes())


def test_corpus_found_links_and_the_body_end() -> None:
    """Not the same nothing: the corpus has links, pixels to look at and body ends."""
    from pixeltrail.tracking import _htmlscan

    results = [_htmlscan.scan(p.read_bytes(), True) for p in FILES]
    kinds = {kind for found, _ in results for kind, *_ in found}
    assert kinds == {LINK, IMAGE}
    assert sum(body_end >= 0 for _, body_end in results) > len(FILES) // 2


def test_corpus_instruments_the_same(make_tracker: TrackerFactory) -> None:
    for path in FILES:
        data = path.read_bytes()
        compiled = make_tracker()
        reference = make_tracker(compiled.message_id)
        out = instrument_html(data, compiled)
        assert out == instrument_html(data, reference, scanner=scan_python), path.name
        assert compiled.tracked == reference.tracked


@settings(max_examples=1500, deadline=None)
@given(_HTMLISH)
def test_html_like_input_scans_the_same(data: bytes) -> None:
    _same_scan(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_scan_the_same(data: bytes) -> None:
    _same_scan(data)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"<",
        b"<" * 10_000_000,
        b'<a href="' + b"x" * 5_000_000 + b'">',
        b"<a href=" + b"x" * 5_000_000,
        b'<a title="' + b"x>" * 1_000_000,
        b"<!--" + b"-" * 1_000_000,
        b"<!--[if mso]>" + b'<a href="https://a.example/">' * 20_000,
        b"<!--[if mso]><!--[if mso]>" * 50_000 + b"<![endif]-->" * 50_000,
        b"<script>" + b"</scrip" * 200_000,
        b"<a " + b"x=" * 1_000_000 + b">",
        b"<a" + b"\x00" * 1_000_000 + b">",
    ],
    ids=lambda data: f"{data[:16]!r}..{len(data)}",
)
def test_pathological_input(data: bytes) -> None:
    _same_scan(data)


@pytest.mark.parametrize(
    "unit",
    [b"</body ", b"<a ", b"<a", b"<a/", b'<x a=">"', b"<a x='", b'<a href=">" '],
)
def test_unterminated_tags_over_and_over(unit: bytes) -> None:
    """Each is read again from the next '<': the reference takes quadratic time on these.

    The compiled scan must not: it reads 300,000 of them, and finds what the reference
    finds in 300 (moved by the extra length), at the top level and inside Outlook's markup.
    """
    from pixeltrail.tracking import _htmlscan

    tail = b'<a href="https://a.example/"></body>'
    for head, end in ((b"", b""), (b"<!--[if mso]>", b"<![endif]-->")):
        few, many = 300, 300_000
        reference = scan_python(head + unit * few + tail + end, True)
        found, body_end = _htmlscan.scan(head + unit * many + tail + end, True)
        first_unit, after = len(head + unit), len(head + unit * few)
        shift = partial(_shift, first_unit=first_unit, after=after, by=len(unit) * (many - few))
        assert found == [tuple(shift(v) for v in item) for item in reference[0]]
        assert body_end == shift(reference[1])


def _shift(v: int, first_unit: int, after: int, by: int) -> int:
    """A position of the short input in the long one: after the repeats, moved by `by`."""
    assert v < first_unit or v >= after, "the reference found something in the repeats"
    return v + by if v >= after else v


def test_other_inputs_are_refused_cleanly() -> None:
    from pixeltrail.tracking import _htmlscan

    with pytest.raises(TypeError):
        _htmlscan.scan("<a href=x>", False)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _htmlscan.scan(b"<a href=x>")  # type: ignore[call-arg]
    # Any buffer reads as its bytes.
    assert _htmlscan.scan(memoryview(b"<a href=x>"), False) == scan_python(b"<a href=x>", False)


def test_without_the_compiled_scanner_the_python_one_runs() -> None:
    program = (
        "import sys; sys.modules['pixeltrail.tracking._htmlscan'] = None\n"
        "from pixeltrail.tracking import htmlscan\n"
        "assert htmlscan.scan is htmlscan.scan_python\n"
        "print(htmlscan.scan(b'<a href=x></body>', False))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "([(0, 8, 9, -1, -1)], 10)"
    assert done.stderr.count("compiled HTML scanner not available") == 1


def _rss_kib() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_no_references_or_memory_are_leaked() -> None:
    from pixeltrail.tracking import _htmlscan

    data = b"".join(
        b'<p><a href="https://a.example/%d" data-track="on">x</a><img src=y></p>' % i
        for i in range(20)
    )
    data += b"<!--[if mso]><v:rect href='https://vml.example/'></v:rect><![endif]--></body>"
    refs = sys.getrefcount(data)
    for _ in range(1000):
        _htmlscan.scan(data, True)
    assert sys.getrefcount(data) == refs
    found, _ = _htmlscan.scan(data, True)
    assert sys.getrefcount(found) == 2  # the name, and the argument of getrefcount
    gc.collect()
    before = _rss_kib()
    for _ in range(100_000):
        _htmlscan.scan(data, True)
    gc.collect()
    # 100,000 scans of 42 tuples each: a leak of one object per call would show as megabytes.
    assert _rss_kib() - before < 2048
