"""What the database already holds, asked by the spider to crawl only what is new or changed.

Rules of an incremental crawl (the default; ``TIANJIN_INCREMENTAL=False`` or ``--full`` turns it
off):

* listing pages are read one after the other, newest first; after
  ``TIANJIN_STOP_AFTER_KNOWN_PAGES`` consecutive pages on which every article is already stored
  and complete, paging stops;
* an article not stored yet, or stored incomplete, is fetched whole;
* a stored, complete article published within ``TIANJIN_REVISIT_DAYS`` days of the newest stored
  article is asked again with a conditional request for its first page (``If-None-Match`` /
  ``If-Modified-Since`` from what the server sent last time); ``304 Not Modified`` means
  unchanged, anything else is fetched whole. The CMS rewrites every page of an article on an
  edit, so the first page stands for all of them;
* older stored articles are not fetched at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any, TypeVar

from storage.db import StorageError, is_transient
from storage.repository import KnownArticle

T = TypeVar("T")
logger = logging.getLogger(__name__)


class StoredArticles:
    """Read-only lookups in the crawl's database, run off the reactor thread; a failure that may
    heal is tried again ``retries`` times with a doubling wait, like the store pipeline's writes."""

    def __init__(self, database_url: str, retries: int = 5, backoff: float = 1.0) -> None:
        self.database_url = database_url
        self.retries = retries
        self.backoff = backoff
        self._repository = None  # type: ignore[var-annotated]

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        attempt = 0
        while True:
            try:
                return await asyncio.to_thread(function, *args)
            except StorageError as exc:
                if attempt >= self.retries or not is_transient(exc):
                    raise
                attempt += 1
                delay = min(self.backoff * 2 ** (attempt - 1), 30.0)
                logger.warning(
                    "%s; trying again in %.1f s (%d/%d)", exc, delay, attempt, self.retries
                )
                await asyncio.sleep(delay)

    def open(self) -> None:
        from storage.db import make_engine
        from storage.repository import Repository

        self._repository = Repository(make_engine(self.database_url))  # type: ignore[assignment]

    def close(self) -> None:
        if self._repository is not None:
            self._repository.engine.dispose()
            self._repository = None

    async def lookup(self, keys: Sequence[str]) -> dict[str, KnownArticle]:
        """Stored facts of those of ``keys`` the database holds."""
        assert self._repository is not None, "StoredArticles.open() was not called"
        return await self._call(self._repository.known_articles, list(keys))

    async def caught_up(self, current_run_id: int | None) -> bool:
        """True when the crawl before this one ended well and read the listing down to what was
        already stored (or to its end): then nothing older than a known page can be missing."""
        assert self._repository is not None, "StoredArticles.open() was not called"
        return await self._call(self._repository.caught_up, current_run_id)

    async def revisit_since(self, days: int) -> date | None:
        """The oldest publication date still re-visited: ``days`` before the newest stored article."""
        assert self._repository is not None, "StoredArticles.open() was not called"
        newest = await self._call(self._repository.newest_published_on)
        return None if newest is None else newest - timedelta(days=days)
