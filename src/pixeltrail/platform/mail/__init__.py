"""Mailboxes and the mail servers they send through (and the built-in outbox)."""
