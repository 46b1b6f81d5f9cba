"""The sign-in throttle on its own: its real limits, its windows and its bounded memory."""

from __future__ import annotations

import threading

from pixeltrail.web.dashboard.throttle import SIZE, SignInThrottle

OWNER = "owner@acme.example"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_email_takes_100_failures_an_hour_from_all_addresses_together() -> None:
    clock = Clock()
    throttle = SignInThrottle(clock=clock)
    for n in range(99):  # 8 failures from each of 12 addresses, then 4 from a 13th
        assert throttle.retry_after(f"203.0.113.{n // 8}", OWNER) == 0
        throttle.failed(f"203.0.113.{n // 8}", OWNER)
        clock.now += 10
    assert throttle.retry_after("198.51.100.7", OWNER) == 0
    throttle.failed("203.0.113.12", OWNER)
    first_failure_ends = 1000.0 + 60 * 60
    assert throttle.retry_after("198.51.100.7", OWNER) == int(first_failure_ends - clock.now) + 1
    assert throttle.retry_after("198.51.100.7", "other@acme.example") == 0
    # An hour after the first failure, one more attempt is allowed.
    clock.now = first_failure_ends + 0.5
    assert throttle.retry_after("198.51.100.7", OWNER) == 0


def test_a_lock_on_an_email_from_one_address_ends_after_15_minutes() -> None:
    clock = Clock()
    throttle = SignInThrottle(clock=clock)
    for _ in range(8):
        throttle.failed("203.0.113.66", OWNER)
    assert throttle.retry_after("203.0.113.66", OWNER) == 15 * 60 + 1
    assert throttle.retry_after("198.51.100.7", OWNER) == 0
    clock.now += 15 * 60
    assert throttle.retry_after("203.0.113.66", OWNER) == 0


def test_filling_the_throttle_past_its_size_keeps_a_lock_and_bounds_memory() -> None:
    throttle = SignInThrottle()
    for _ in range(8):
        throttle.failed("203.0.113.66", OWNER)
    assert throttle.retry_after("203.0.113.66", OWNER) > 0
    # A spray of failures, each from a new address for a new email: more counters than fit.
    for n in range(SIZE // 2):
        throttle.failed(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", f"u{n}@spray.example")
    assert throttle.retry_after("203.0.113.66", OWNER) > 0
    assert len(throttle) <= 2 * SIZE


def test_attempts_sent_in_parallel_are_admitted_no_more_than_the_limit() -> None:
    throttle = SignInThrottle(clock=Clock())
    start = threading.Barrier(40)
    admitted: list[float] = []

    def attempt() -> None:
        start.wait()
        wait, at = throttle.admit("203.0.113.66", OWNER)
        if not wait:
            admitted.append(at)

    threads = [threading.Thread(target=attempt) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 8
    assert throttle.retry_after("203.0.113.66", OWNER) == 15 * 60 + 1


def test_a_successful_attempt_counts_against_nobody() -> None:
    throttle = SignInThrottle()
    for n in range(19):  # one short of the client's limit, over many emails
        throttle.failed("203.0.113.66", f"u{n}@acme.example")
    wait, at = throttle.admit("203.0.113.66", OWNER)
    assert wait == 0
    throttle.succeeded("203.0.113.66", OWNER, at)
    # The sign-in that worked is not the client's 20th failure.
    assert throttle.retry_after("203.0.113.66", "another@acme.example") == 0
