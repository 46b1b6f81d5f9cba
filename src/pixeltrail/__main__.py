"""`python -m pixeltrail`: the same as the `pixeltrail` command."""

from pixeltrail.cli import main

main()
