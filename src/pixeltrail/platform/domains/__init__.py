"""Custom tracking domains: hostnames, their DNS checks, and which are served."""
