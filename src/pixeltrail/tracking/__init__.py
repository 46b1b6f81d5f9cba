"""The tracking engine: tokens, message instrumentation and hit classification (pure, no I/O)."""
