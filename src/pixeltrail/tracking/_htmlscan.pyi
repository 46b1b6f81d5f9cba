"""The HTML scan of htmlscan.py, compiled (_htmlscan.c)."""

def scan(
    data: bytes | bytearray | memoryview, with_img: bool, /
) -> tuple[list[tuple[int, int, int, int, int]], int]: ...
