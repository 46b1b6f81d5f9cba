"""The subcommands of `pixeltrail`, one module per area; each calls the library, nothing more."""
