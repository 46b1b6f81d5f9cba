"""The token check and spool line of hitline.py, compiled (_hitline.c)."""

from collections.abc import Callable, Sequence

class Verifier:
    def __init__(
        self,
        keys: Sequence[tuple[bytes, bytes]],
        layout: Sequence[int],
        destination: Callable[[bytes, bool], str],
        event_id: Callable[[], str],
        max_token_chars: int,
    ) -> None: ...
    def line(
        self,
        token: str,
        is_open: bool,
        ip: str,
        user_agent: str,
        method: str,
        account: bytes,
        /,
    ) -> tuple[bytes, str | None] | None: ...
