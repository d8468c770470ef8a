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
from collections.abc import Sequence
from datetime import date, timedelta

from storage.repository import KnownArticle


class StoredArticles:
    """Read-only lookups in the crawl's database, run off the reactor thread."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._repository = None  # type: ignore[var-annotated]

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
        return await asyncio.to_thread(self._repository.known_articles, list(keys))

    async def caught_up(self, current_run_id: int | None) -> bool:
        """True when the crawl before this one ended well and read the listing down to what was
        already stored (or to its end): then nothing older than a known page can be missing."""
        assert self._repository is not None, "StoredArticles.open() was not called"
        return await asyncio.to_thread(self._repository.caught_up, current_run_id)

    async def revisit_since(self, days: int) -> date | None:
        """The oldest publication date still re-visited: ``days`` before the newest stored article."""
        assert self._repository is not None, "StoredArticles.open() was not called"
        newest = await asyncio.to_thread(self._repository.newest_published_on)
        return None if newest is None else newest - timedelta(days=days)
