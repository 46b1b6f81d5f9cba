"""Webhooks: endpoints, the events queued for them, delivery, retention and where they may go."""
