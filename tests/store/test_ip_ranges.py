"""Apple's egress list: parsed strictly, loaded all or nothing, one list per source."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from pixeltrail.store.ip_ranges import parse_apple_csv, ranges, replace_ranges

SAMPLE = (
    "\ufeff172.224.224.0/27,GB,GB-EN,London,\n"
    "172.224.224.32/31,GB,GB-EN,London,\n"
    "\n"
    "2a02:26f7:b3c0:4000::/64,GB,GB-EN,London,\n"
    "104.28.0.5/24,US,US-CA,Los Angeles,\n"  # host bits set: normalised
    "  \n"
    "172.224.224.0/27,GB,GB-EN,London,\n"  # repeated: kept once
    "2A02:26F7:B3C0:4000:0000::/64,GB,GB-EN,London,\n"  # the same network, spelt longer
    "17.0.0.1,US,US-CA,Cupertino,\n"  # a single address
)


def test_parse_apple_csv_reads_ipv4_and_ipv6_prefixes() -> None:
    assert parse_apple_csv(SAMPLE) == [
        "172.224.224.0/27",
        "172.224.224.32/31",
        "2a02:26f7:b3c0:4000::/64",
        "104.28.0.0/24",
        "17.0.0.1/32",
    ]


def test_bad_lines_are_reported_with_their_numbers() -> None:
    text = (
        "172.224.224.0/27,GB,GB-EN,London,\n"
        "prefix,country,region,city,\n"
        "172.224.224.0/33,GB,GB-EN,London,\n"
        "\n"
        "2a02:26f7::zz/64,GB,GB-EN,London,\n"
    )
    with pytest.raises(ValueError, match="3 bad lines") as info:
        parse_apple_csv(text)
    message = str(info.value)
    assert "line 2: 'prefix'" in message
    assert "line 3: '172.224.224.0/33'" in message
    assert "line 5: '2a02:26f7::zz/64'" in message
    assert "line 1" not in message and "line 4" not in message


def test_only_the_first_ten_bad_lines_are_listed() -> None:
    text = "\n".join(f"bad{n},XX,,," for n in range(1, 26))
    with pytest.raises(ValueError, match="25 bad lines") as info:
        parse_apple_csv(text)
    message = str(info.value)
    assert "line 10: 'bad10'" in message
    assert "line 11" not in message
    assert "and 15 more" in message


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_a_list_without_networks_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="no networks"):
        parse_apple_csv(text)


def test_replace_ranges_replaces_one_source_only(store: Engine) -> None:
    with store.begin() as conn:
        assert replace_ranges(conn, "apple_mpp", ["172.224.224.0/27", "2a02:26f7::/64"]) == 2
        assert replace_ranges(conn, "other", ["10.0.0.0/8"]) == 1
    with store.begin() as conn:
        assert replace_ranges(conn, "apple_mpp", ["17.0.0.0/8", "17.0.0.0/8"]) == 1
    with store.connect() as conn:
        assert ranges(conn, "apple_mpp") == ["17.0.0.0/8"]
        assert ranges(conn, "other") == ["10.0.0.0/8"]
        assert ranges(conn, "unknown") == []


def test_replace_ranges_in_a_rolled_back_transaction_changes_nothing(store: Engine) -> None:
    with store.begin() as conn:
        replace_ranges(conn, "apple_mpp", ["172.224.224.0/27"])
    with store.connect() as conn:
        with conn.begin() as tx:
            replace_ranges(conn, "apple_mpp", ["10.0.0.0/8"])
            tx.rollback()
        assert ranges(conn, "apple_mpp") == ["172.224.224.0/27"]


def test_replace_ranges_refuses_bad_input(store: Engine) -> None:
    with store.begin() as conn:
        with pytest.raises(ValueError, match="source"):
            replace_ranges(conn, "x" * 33, ["10.0.0.0/8"])
        with pytest.raises(ValueError, match="does not appear to be"):
            replace_ranges(conn, "apple_mpp", ["10.0.0.0/8", "nonsense"])
        assert ranges(conn, "apple_mpp") == []
