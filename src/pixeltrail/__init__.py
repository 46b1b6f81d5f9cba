"""pixeltrail: self-hosted email outreach with open and click tracking."""

__version__ = "0.1.0"
