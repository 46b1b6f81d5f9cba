"""Accounts and the people who sign in to them."""
