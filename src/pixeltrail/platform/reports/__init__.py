"""Campaign reports: summary, per-contact rows, links and timeline."""
