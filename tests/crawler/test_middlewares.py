"""Backoff of retried requests."""

from __future__ import annotations

from datetime import UTC, datetime

from crawler.middlewares import backoff_delay, retry_after_seconds


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_delay(n, 2.0, 60.0) for n in (1, 2, 3, 6)] == [2.0, 4.0, 8.0, 60.0]
    assert backoff_delay(3, 0, 60.0) == 0.0


def test_retry_after_wins_when_longer_but_stays_capped() -> None:
    assert backoff_delay(1, 1.0, 60.0, retry_after=7.0) == 7.0
    assert backoff_delay(1, 1.0, 60.0, retry_after=3600.0) == 60.0
    assert backoff_delay(1, 0, 60.0, retry_after=5.0) == 5.0


def test_retry_after_header_forms() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds(b"120") == 120.0
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
