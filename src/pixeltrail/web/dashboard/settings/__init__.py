"""The dashboard's settings pages: account, API keys, mailboxes, people, webhooks."""
