"""The dashboard's contact pages: list, import, suppressions."""
