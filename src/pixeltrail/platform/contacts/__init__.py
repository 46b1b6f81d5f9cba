"""Contacts: the records, CSV in and out, names, addresses, suppressions and unsubscribing."""
