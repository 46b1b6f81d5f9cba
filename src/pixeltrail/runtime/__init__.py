"""The composition root: pixeltrail's processes (HTTP, background, sender) built from the layers."""
