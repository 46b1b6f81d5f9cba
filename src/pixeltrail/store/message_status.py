"""Where a message of the queue is: made by the scheduler, claimed and sent by a worker."""

from __future__ import annotations

from enum import StrEnum


class MessageStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its send_at_ms
    CLAIMED = "claimed"  # taken by a worker, not tried yet (send_at_ms is the lease)
    SENDING = "sending"  # handed to the mail server (committed first: never sent twice)
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    BOUNCED = "bounced"  # sent, then a bounce for it came back to its mailbox


# Made but neither sent nor given up on: what a settings change or a new step leaves alone.
QUEUED = (MessageStatus.SCHEDULED, MessageStatus.CLAIMED, MessageStatus.SENDING)
