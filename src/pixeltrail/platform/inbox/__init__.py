"""What comes back to a mailbox: replies, automatic replies and bounces, read from its INBOX."""
