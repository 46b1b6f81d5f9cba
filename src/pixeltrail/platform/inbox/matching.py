"""How an inbound message was matched to the message of ours it answers, most certain first."""

from __future__ import annotations

from enum import StrEnum


class MatchedBy(StrEnum):
    # Its In-Reply-To names our Message-ID (a bounce: the Message-ID of the original it quotes).
    IN_REPLY_TO = "in_reply_to"
    REFERENCES = "references"  # its References name our Message-ID
    SUBJECT = "subject"  # weaker: an enrolled contact of the mailbox, `Re:` of the step's subject
    RECIPIENT = "recipient"  # a bounce: the failed recipient was sent this message
