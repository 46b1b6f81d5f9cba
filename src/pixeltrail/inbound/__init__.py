"""Inbound mail: what a message in a mailbox's INBOX is (bounce, auto-reply, reply) and which of
our messages it answers. Pure: bytes in, a verdict out; no database, no network."""

from pixeltrail.inbound.classify import MAX_READ_BYTES, Inbound, InboundKind, classify_message
from pixeltrail.inbound.message_ids import our_message_id, parse_message_ids
from pixeltrail.inbound.reports import FailedRecipient

__all__ = [
    "MAX_READ_BYTES",
    "FailedRecipient",
    "Inbound",
    "InboundKind",
    "classify_message",
    "our_message_id",
    "parse_message_ids",
]
