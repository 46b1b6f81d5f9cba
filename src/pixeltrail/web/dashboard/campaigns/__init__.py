"""The dashboard's campaign pages: list, sequence, preview, settings, contacts."""
