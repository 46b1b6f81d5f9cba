"""The web layer: ASGI apps for tracking (raw and fast), the API and the dashboard."""
