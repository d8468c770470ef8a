"""The helper process (crawler.offload): work sent to it comes back as if done here; when it dies,
callers are told at once and nothing waits for ever."""

from __future__ import annotations

import asyncio
import sys
import time
import types
from datetime import UTC, date, datetime

import pytest
from scrapy.settings import Settings

from crawler import offload
from crawler.extract import extract_article, extract_listing
from crawler.offload import (
    Helper,
    HelperGone,
    _early_wanted,
    helper_of,
    helper_wanted,
    sign_and_save,
)
from crawler.replica import ReplicaSite
from storage.db import StorageError, is_transient
from storage.repository import ArticleRecord


@pytest.fixture(params=["start", "fork"])
def helper(request: pytest.FixtureRequest) -> Helper:
    """A helper started both ways: a fresh interpreter (``start``), and a fork of this process
    (``fork``, as ``prestart`` does before a command loads Scrapy)."""
    started = Helper()
    getattr(started, request.param)()
    yield started
    started.close()


def _pages(site: ReplicaSite, host: str = "www.exploringtianjin.com") -> list[tuple[str, str]]:
    pages = [(f"http://{host}{site.listing_path(1)}", "listing")]
    for i in range(6):
        head = site.head(i)
        pages += [
            (f"http://{host}{head.path(p)}", "article") for p in range(1, head.page_count + 1)
        ]
    return [
        (url, site.respond(host, url.split(host, 1)[1], {}).body.decode("utf-8"))
        for url, _kind in pages
    ]


def test_pages_read_by_the_helper_equal_pages_read_here(helper: Helper) -> None:
    site = ReplicaSite(articles=40, seed=5)
    pages = _pages(site)

    async def read_all() -> list[object]:
        calls = [
            helper.call_async(
                extract_listing if "/n_" in url or i == 0 else extract_article, html, url
            )
            for i, (url, html) in enumerate(pages)
        ]
        return list(await asyncio.gather(*calls))

    got = asyncio.run(read_all())
    want = [
        (extract_listing if i == 0 else extract_article)(html, url)
        for i, (url, html) in enumerate(pages)
    ]
    assert got == want
    assert any(page.paragraphs for page in got[1:])  # real articles, not empty reads


def test_an_exception_in_the_helper_is_raised_to_the_caller(helper: Helper) -> None:
    async def fail() -> None:
        await helper.call_async(int, "not a number")

    with pytest.raises(ValueError, match="not a number"):
        asyncio.run(fail())
    with pytest.raises(ZeroDivisionError):
        helper.call(divmod, 1, 0)
    assert helper.call(pow, 2, 10) == 1024  # the lane still works after a failure


def test_a_killed_helper_fails_pending_and_later_calls_with_helper_gone(helper: Helper) -> None:
    assert helper.process is not None

    async def pending_then_later() -> tuple[BaseException, BaseException]:
        waiting = asyncio.ensure_future(helper.call_async(time.sleep, 30))
        await asyncio.sleep(0.5)
        helper.process.kill()
        with pytest.raises(HelperGone) as first:
            await asyncio.wait_for(waiting, 10)
        with pytest.raises(HelperGone) as later:
            await helper.call_async(pow, 2, 2)
        return first.value, later.value

    asyncio.run(pending_then_later())
    with pytest.raises(HelperGone):
        helper.call(pow, 2, 2)
    assert not helper.alive


@pytest.mark.parametrize("how", ["start", "fork"])
def test_close_ends_the_helper_promptly(how: str) -> None:
    started = Helper()
    getattr(started, how)()
    assert started.call(pow, 3, 2) == 9
    process = started.process
    assert process is not None and process.poll() is None
    began = time.monotonic()
    started.close()
    assert process.poll() is not None
    assert time.monotonic() - began < 5


def test_a_storage_error_keeps_its_verdict_across_the_process_boundary(helper: Helper) -> None:
    # Nothing listens on port 1: the save fails the way a database that is down fails.
    config = ("postgresql+psycopg://postgres@127.0.0.1:1/nothing", 0.8, 128)
    record = ArticleRecord(
        article_key="1",
        url="http://www.exploringtianjin.com/a.htm",
        title="Title",
        source=None,
        published_on=date(2024, 1, 1),
        body="Body text of the article.",
        page_count=1,
        complete=True,
        images=[],
    )
    with pytest.raises(StorageError) as raised:
        helper.call(sign_and_save, config, [record], datetime.now(UTC), None)
    assert raised.value.transient is True
    assert is_transient(raised.value)


@pytest.mark.parametrize(
    ("values", "wanted"),
    [
        ({}, False),  # the project's polite defaults: one request a second, AutoThrottle
        ({"DOWNLOAD_DELAY": 0, "AUTOTHROTTLE_ENABLED": False}, True),
        ({"DOWNLOAD_DELAY": 0, "AUTOTHROTTLE_ENABLED": True}, False),
        ({"TIANJIN_HELPER_PROCESS": "True"}, True),
        (
            {"TIANJIN_HELPER_PROCESS": "False", "DOWNLOAD_DELAY": 0, "AUTOTHROTTLE_ENABLED": False},
            False,
        ),
    ],
)
def test_auto_wants_a_helper_only_at_full_speed(values: dict[str, object], wanted: bool) -> None:
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    settings.setdict(values, priority="cmdline")
    assert helper_wanted(settings) is wanted
    # The judgement a command makes before loading Scrapy (to fork the helper early) agrees.
    assert _early_wanted(values) is wanted
    assert _early_wanted({k: str(v) for k, v in values.items()}) is wanted


def test_a_helper_forked_before_the_crawl_is_the_one_the_crawl_uses() -> None:
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    settings.setdict({"TIANJIN_HELPER_PROCESS": "True"}, priority="cmdline")
    crawler = types.SimpleNamespace(settings=settings, signals=_Signals())
    forked = Helper()
    forked.fork()
    offload._PRESTARTED = forked
    try:
        assert helper_of(crawler) is forked
        assert offload._PRESTARTED is None
        assert forked.call(pow, 2, 10) == 1024
    finally:
        forked.close()
    # Not wanted by the crawl's settings: the forked helper is ended, none is started.
    settings.set("TIANJIN_HELPER_PROCESS", "False", priority="cmdline")
    unwanted = Helper()
    unwanted.fork()
    offload._PRESTARTED = unwanted
    process = unwanted.process
    assert helper_of(types.SimpleNamespace(settings=settings, signals=_Signals())) is None
    assert offload._PRESTARTED is None
    assert process is not None and process.poll() is not None


def test_prestart_refuses_once_scrapy_is_loaded() -> None:
    # This test process has loaded Scrapy: a fork now would share (and soon copy) its heap.
    assert "scrapy" in sys.modules
    offload.prestart({"TIANJIN_HELPER_PROCESS": "True"})
    assert offload._PRESTARTED is None


class _Signals:
    def __init__(self) -> None:
        self.connected: list[object] = []

    def connect(self, receiver: object, **_kwargs: object) -> None:
        self.connected.append(receiver)


_ARENAS_SCRIPT = r"""
import ctypes, os, sys, threading
from crawler.offload import limit_malloc_arenas
if sys.argv[1] == "limit":
    limit_malloc_arenas(1)
def work():
    blocks = [ctypes.create_string_buffer(4096) for _ in range(2000)]
    del blocks
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(None)
libc.fdopen.restype = ctypes.c_void_p
read, write = os.pipe()
stream = libc.fdopen(write, b"w")
libc.malloc_info(0, ctypes.c_void_p(stream))
libc.fclose(ctypes.c_void_p(stream))
print(os.read(read, 1 << 20).decode().count("<heap nr="))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc arenas")
def test_limit_malloc_arenas_keeps_threads_in_one_arena() -> None:
    import subprocess

    def arenas(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", _ARENAS_SCRIPT, mode], capture_output=True, text=True, check=True
        )
        return int(out.stdout.split()[-1])

    assert arenas("limit") == 1
    assert arenas("default") > 1  # what the limit prevents: an arena per thread
