"""Setting overrides as a command gathers them (``-s NAME=VALUE``, named sets), kept apart from
``crawler.runner`` so that a command can read them before it loads Scrapy
(``crawler.offload.prestart`` must come first)."""

from __future__ import annotations

from typing import Any

#: Settings that turn the polite real-site defaults into a full-speed crawl of our own loopback
#: replica (``demo``, the benchmark, the tests).
FULL_SPEED: dict[str, Any] = {
    "DOWNLOAD_DELAY": 0,
    "AUTOTHROTTLE_ENABLED": False,
    "CONCURRENT_REQUESTS": 32,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 32,
    "TIANJIN_RETRY_BACKOFF": 0,
}


class SettingError(ValueError):
    """A ``-s NAME=VALUE`` option that cannot be understood."""


def parse_setting_options(options: list[str] | None) -> dict[str, str]:
    """``["A=1", "B=x=y"]`` -> ``{"A": "1", "B": "x=y"}``; a missing ``=`` or name is an error."""
    result: dict[str, str] = {}
    for option in options or []:
        name, sep, value = option.partition("=")
        name = name.strip()
        if not sep or not name:
            raise SettingError(f"-s expects NAME=VALUE, got {option!r}")
        result[name] = value
    return result
