"""Reading what comes back: each mailbox's INBOX (IMAP, or the built-in outbox's folder)."""
