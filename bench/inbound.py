"""Reading an INBOX: messages classified per second, against the standard library's parse alone.

A 10,000-message INBOX is built in a local folder (the built-in outbox's format, written as the
dashboard writes it) from the real bounces and auto-replies in tests/inbound/samples and
generated replies and bounces to messages as pixeltrail sends them, then read back as the
reader reads it (LocalInbox, in batches). Two ways of going through the same messages run
side by side, interleaved round by round (A/B, then B/A, ...) and timed in CPU time:

- pixeltrail: `classify_message(raw)`: parse, find the kind (delivery reports, mail-system
  heuristics, auto-reply headers, reply headers), the failed recipients, the ids referred to
  and the first 2 KB of text;
- the standard library: `email.message_from_bytes(raw, policy=policy.default)`, then every
  part walked (`walk()`, its content type) and the headers a match needs read (From,
  Subject, Message-ID, In-Reply-To, References): a parse with no verdict;
- the same parse with `policy.compat32`, the parser classify_message uses (headers kept as
  text, decoded only where needed): the floor under classifying.

    .venv/bin/python bench/inbound.py            # print the table
    .venv/bin/python bench/inbound.py --write    # and update docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import email
import gc
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from email import policy
from pathlib import Path

from pixeltrail.inbound import InboundKind, classify_message
from pixeltrail.platform.mail.local_inbox import deliver
from pixeltrail.platform.mail.outbox_answers import contact_reply, delivery_failure, read_sent
from pixeltrail.receiving.local_inbox import LocalInbox

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "tests" / "inbound" / "samples"
DOCS = REPO / "docs" / "benchmarks.md"
BEGIN = "<!-- bench:inbound -->"
END = "<!-- /bench:inbound -->"
COMMAND = ".venv/bin/python bench/inbound.py --write"
BATCH = 50  # messages fetched at a time, as the reader (receiving/reader.py) fetches them

Run = Callable[[bytes], object]
NAMES = (
    "pixeltrail classify_message",
    "stdlib parse + walk (policy.default)",
    "stdlib parse + walk (policy.compat32)",
)

_TEXT = (
    "thanks for reaching out this sounds interesting could we talk next week about pricing "
    "our team is already using something similar but happy to compare notes please send "
    "more details grüße and have a good day"
)
_WORDS = _TEXT.split()


def _sent(n: int) -> bytes:
    """A message as pixeltrail sends it (headers and a text part), to answer."""
    body = " ".join(_WORDS[(n + i) % len(_WORDS)] for i in range(40 + n % 80))
    return (
        f"Message-ID: <{n:016x}@acme.example>\r\n"
        "Date: Tue, 01 Dec 2026 09:00:00 +0000\r\n"
        "From: Ann Seller <ann@acme.example>\r\n"
        f"To: Contact {n} <c{n}@example.com>\r\n"
        f"Subject: Quick question {n}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"Hi Contact {n},\r\n\r\n{body}\r\n"
    ).encode()


def inbox_messages(count: int) -> tuple[list[bytes], collections.Counter[str]]:
    """`count` messages: the samples in turn for 4 of every 10, generated replies for 5 and a
    generated bounce for 1; and how many of each source."""
    samples = [p.read_bytes() for p in sorted(SAMPLES.glob("*.eml"))]
    made: list[bytes] = []
    sources: collections.Counter[str] = collections.Counter()
    for n in range(count):
        slot = n % 10
        if slot < 4:
            made.append(samples[n % len(samples)])
            sources["samples (real bounces, auto-replies, reports)"] += 1
        elif slot < 9:
            text = " ".join(_WORDS[(n + i) % len(_WORDS)] for i in range(5 + n % 60))
            made.append(contact_reply(read_sent(_sent(n)), text))
            sources["generated replies"] += 1
        else:
            made.append(delivery_failure(read_sent(_sent(n))))
            sources["generated bounces (RFC 3464)"] += 1
    return made, sources


def through_local_inbox(messages: Sequence[bytes], folder: Path) -> tuple[list[bytes], float]:
    """The messages written to a local INBOX and read back as the reader does; and the
    messages per second of reading them back (wall time, one pass)."""
    for raw in messages:
        deliver(folder, raw)
    inbox = LocalInbox(folder)
    inbox.open()
    read: list[bytes] = []
    start = time.perf_counter()
    last = 0
    while batch := inbox.fetch_after(last, BATCH):
        read.extend(m.raw for m in batch)
        last = batch[-1].uid
    elapsed = time.perf_counter() - start
    inbox.close()
    return read, len(read) / elapsed


def stdlib_parse(raw: bytes) -> object:
    msg = email.message_from_bytes(raw, policy=policy.default)
    for name in ("From", "Subject", "Message-ID", "In-Reply-To", "References"):
        msg.get(name)
    return [part.get_content_type() for part in msg.walk()]


def stdlib_parse_compat32(raw: bytes) -> object:
    """The same with the parser classify_message uses (policy.compat32: headers kept as text)."""
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    for name in ("From", "Subject", "Message-ID", "In-Reply-To", "References"):
        msg.get(name)
    return [part.get_content_type() for part in msg.walk()]


def _time(run: Run, messages: Sequence[bytes]) -> float:
    gc.collect()
    start = time.process_time()
    for raw in messages:
        run(raw)
    return time.process_time() - start


def measure(runs: Sequence[Run], messages: Sequence[bytes], rounds: int) -> list[list[float]]:
    """Messages per second of each, per round, interleaved: A B, B A, A B, ..."""
    for run in runs:  # warm up
        _time(run, messages[:200])
    rates: list[list[float]] = [[] for _ in runs]
    for round_ in range(rounds):
        order = list(range(len(runs)))
        for i in order if round_ % 2 == 0 else reversed(order):
            rates[i].append(len(messages) / _time(runs[i], messages))
    return rates


def report(
    messages: Sequence[bytes],
    sources: collections.Counter[str],
    read_rate: float,
    rates: Sequence[Sequence[float]],
    rounds: int,
) -> str:
    kinds = collections.Counter(classify_message(raw).kind for raw in messages)
    size = sum(map(len, messages)) / len(messages)
    ours, stdlib, compat32 = (statistics.median(r) for r in rates)
    made = ", ".join(f"{n:,} {source}" for source, n in sources.items())
    found = ", ".join(f"{kinds[kind]:,} {kind}" for kind in InboundKind if kinds[kind])
    lines = [
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC with `{COMMAND}`: Python "
        f"{platform.python_version()}, {_cpu()}.",
        "",
        f"INBOX: {len(messages):,} messages ({made}), {size / 1024:.1f} KiB on average; "
        f"classified as {found}. Read back from the local INBOX (LocalInbox, {BATCH} at a "
        f"time): {read_rate:,.0f} messages/s.",
        "",
        f"| implementation | messages/s (median of {rounds}) | range |",
        "| --- | ---: | ---: |",
    ]
    for name, r in zip(NAMES, rates, strict=True):
        lines.append(f"| {name} | {statistics.median(r):,.0f} | {min(r):,.0f} to {max(r):,.0f} |")
    times = "\N{MULTIPLICATION SIGN}"
    lines += [
        "",
        f"- classify_message / stdlib parse (policy.default) = **{ours / stdlib:.2f}{times}**",
        f"- classify_message / stdlib parse (policy.compat32) = **{ours / compat32:.2f}{times}**"
        " (what classifying costs on top of the parse it uses)",
    ]
    return "\n".join(lines)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


DOC_SECTION = f"""
## Reading an INBOX: classifying replies and bounces

`bench/inbound.py` builds a 10,000-message INBOX in a local folder (the built-in outbox's
format: `<uid>.eml` files, written as the Outbox page writes them), 4 in 10 taken in turn from
the real bounces, auto-replies and reports of 20 mail servers in `tests/inbound/samples`, 5 in
10 generated replies (In-Reply-To and References a Message-ID of ours, the original quoted)
and 1 in 10 generated RFC 3464 bounces; reads it back as the reader does (`LocalInbox`, 50 at a
time), then goes through the same messages three ways, interleaved round by round and timed in
CPU time: pixeltrail's `classify_message` (the verdict, the failed recipients, the ids referred
to, the first 2 KB of text) and the standard library's parse alone (`email.message_from_bytes`
with `policy.default`, every part walked, the headers a match needs read), and the same parse
with `policy.compat32`, the parser `classify_message` uses (headers kept as text and decoded
only where needed): the floor under classifying. `policy.default` turns every header it reads
into a header object (addresses, dates and encoded words parsed), which is why the classifier
beats the modern parse alone. A run takes about 4 minutes, so `make bench` leaves it out.

{BEGIN}
{END}
"""


def write_docs(section: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    if BEGIN not in text:
        text = text.rstrip("\n") + "\n" + DOC_SECTION
    head, rest = text.split(BEGIN, 1)
    DOCS.write_text(f"{head}{BEGIN}\n{section}\n{END}{rest.split(END, 1)[1]}", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=10_000, help="messages in the INBOX")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds of each")
    parser.add_argument("--write", action="store_true", help=f"update {DOCS.name} too")
    args = parser.parse_args(argv)
    if args.messages < 10 or args.rounds < 1:
        parser.error("--messages must be at least 10 and --rounds at least 1")
    made, sources = inbox_messages(args.messages)
    with tempfile.TemporaryDirectory(prefix="pixeltrail-inbox-") as tmp:
        messages, read_rate = through_local_inbox(made, Path(tmp) / "inbox")
    if messages != made:
        sys.exit("the local INBOX did not give back the messages written, in order")
    rates = measure([classify_message, stdlib_parse, stdlib_parse_compat32], messages, args.rounds)
    section = report(messages, sources, read_rate, rates, args.rounds)
    print(section)
    if args.write:
        write_docs(section)
        print(f"\nwrote {DOCS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
