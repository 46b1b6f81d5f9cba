"""Recording hits: the append-only spool and the flusher that moves it into the database."""
