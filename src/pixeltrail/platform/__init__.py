"""The platform's domain rules: accounts, tracking domains, mailboxes, contacts, campaigns.

Functions take a SQLAlchemy connection (the caller owns the transaction) and raise the domain
errors of `errors`, never HTTP errors; the API and the CLI translate them.
"""
