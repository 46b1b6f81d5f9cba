"""Sending: building MIME messages, the mailers that deliver them (SMTP, outbox), the worker."""
