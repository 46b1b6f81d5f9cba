"""Campaigns: their steps and templates, settings, lifecycle, enrolled contacts and scheduling."""
