"""The dashboard: server-rendered pages at `/` for people who sign in."""
