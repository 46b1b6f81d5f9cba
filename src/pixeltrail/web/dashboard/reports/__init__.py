"""The dashboard's campaign report pages and chart."""
