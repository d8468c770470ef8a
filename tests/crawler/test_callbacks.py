"""The spider's callbacks pass the check Scrapy is told not to run on every response."""

from __future__ import annotations

import inspect

from scrapy.utils.misc import is_generator_with_return_value

from crawler.spiders.tianjin_updates import TianjinUpdatesSpider


def test_no_callback_is_a_generator_returning_a_value() -> None:
    # WARN_ON_GENERATOR_RETURN_VALUE is off in crawler/settings.py (Scrapy's per-call check cost
    # 3 % of a crawl); a `return value` in a generator callback would silently drop the value.
    generators = [
        function
        for _, function in inspect.getmembers(TianjinUpdatesSpider, inspect.isfunction)
        if inspect.isgeneratorfunction(function)
    ]
    assert generators, "the spider has generator callbacks"
    assert [f.__name__ for f in generators if is_generator_with_return_value(f)] == []


def test_the_check_sees_a_returned_value() -> None:
    def callback(response: object) -> object:
        yield response
        return 1

    assert is_generator_with_return_value(callback)
