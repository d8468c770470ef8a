"""Scrapy settings of the tianjin-updates project; each non-default value says why it is set."""

from __future__ import annotations

import os

from crawler.urls import DEFAULT_HOSTS

BOT_NAME = "tianjin_updates"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

# Say who we are: a government site's operators should be able to tell us apart from an attack.
USER_AGENT = "tianjin-updates/0.1 (+news archive crawler; polite: 1 request/s per host)"

# --- Politeness towards the real site --------------------------------------------------------
# China Daily hosts answered 502 to fast crawling and recovered at about one request a second.
ROBOTSTXT_OBEY = True
DOWNLOAD_DELAY = 1.0
CONCURRENT_REQUESTS_PER_DOMAIN = 1
# AutoThrottle only ever slows down from DOWNLOAD_DELAY (it never goes below it).
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
# A page slower than this is a failure worth retrying, not a reason to hang the crawl.
DOWNLOAD_TIMEOUT = 30

# --- Engine ------------------------------------------------------------------------------------
# Scrapy handles the output of every response with CONCURRENT_ITEMS asyncio tasks (100 by
# default), created afresh per response: a tenth of this crawl's CPU went to creating them. An
# article page yields one item or one request and a listing page about twenty requests; eight
# keep those flowing.
CONCURRENT_ITEMS = 8
# Scrapy re-reads a generator callback's source to warn about `return <value>` in it whenever the
# bound method misses its cache, which is most calls (3 % of a crawl's CPU). A test runs the same
# check once over the spider's callbacks instead.
WARN_ON_GENERATOR_RETURN_VALUE = False

# --- Retries -----------------------------------------------------------------------------------
# 429 and 5xx heal by themselves on this site; 3 retries (4 tries) with exponential backoff.
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [429, 500, 502, 503, 504, 520, 522, 524, 408]
DOWNLOADER_MIDDLEWARES = {
    # Our subclass adds backoff (and Retry-After) to Scrapy's retry middleware, in its slot.
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.middlewares.BackoffRetryMiddleware": 550,
    # Scrapy's redirect middlewares, minus a warning on every crawl that REFERER_ENABLED is off.
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    "crawler.middlewares.MetaRefreshMiddleware": 580,
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    "crawler.middlewares.RedirectMiddleware": 600,
    # A redirect back onto its own chain is reported as an error, not dropped silently.
    "crawler.middlewares.RedirectLoopMiddleware": 650,
    # Scrapy's robots.txt middleware lets through all but one of the requests that wait for a
    # host's robots.txt together (Scrapy 2.13+); ours makes every one of them obey it.
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawler.middlewares.RobotsTxtMiddleware": 100,
}
#: Seconds before the first retry; doubled for each further one (0 disables the waiting).
TIANJIN_RETRY_BACKOFF = 2.0
#: Upper bound of one backoff wait, also for a server's Retry-After.
TIANJIN_RETRY_BACKOFF_MAX = 60.0

# --- The site ----------------------------------------------------------------------------------
#: Hosts that serve the site (comma-separated); the start URL's host is always added.
TIANJIN_HOSTS = ",".join(DEFAULT_HOSTS)
#: Listing pages to read at most (0: all of them).
TIANJIN_MAX_PAGES = 0
#: Crawl only what is new or changed (see crawler/incremental.py); False reads everything.
TIANJIN_INCREMENTAL = True
#: Stop paging after this many consecutive listing pages whose articles are all stored and complete.
TIANJIN_STOP_AFTER_KNOWN_PAGES = 1
#: Re-visit (with conditional requests) stored articles published this many days before the newest.
TIANJIN_REVISIT_DAYS = 2

# --- Items and storage -----------------------------------------------------------------------------
ITEM_PIPELINES = {
    "pipelines.normalise.NormalisePipeline": 100,
    "pipelines.validate.ValidatePipeline": 200,
    "pipelines.deduplicate.DeduplicatePipeline": 300,
    "pipelines.store.StorePipeline": 900,
}
#: Database URL; the environment variable of the same name is the default.
TIANJIN_UPDATES_DB = os.environ.get("TIANJIN_UPDATES_DB", "sqlite:///tianjin_updates.sqlite3")
#: What started the crawl, recorded in crawl_runs: manual or schedule.
TIANJIN_TRIGGER = "manual"
#: Articles written per database transaction, and the longest a smaller batch waits (seconds).
TIANJIN_BATCH_SIZE = 50
TIANJIN_FLUSH_SECONDS = 5.0
#: A batch write that fails for a reason that may heal (server down, connection lost, SQLite
#: locked) is tried again this many times, waiting this many seconds, doubled each time.
TIANJIN_DB_RETRIES = 5
TIANJIN_DB_RETRY_BACKOFF = 1.0
#: Read pages, and sign and write batches, in a helper process beside the crawl's (see
#: crawler/offload.py), so the crawl's own process only downloads: True, False, or "auto" (on
#: at full speed, i.e. no DOWNLOAD_DELAY and no AutoThrottle; off for a polite crawl, which waits
#: on the network). 30–45 % more pages/s on two cores for about 60 MB more memory.
TIANJIN_HELPER_PROCESS = "auto"
#: Estimated Jaccard similarity (3-word shingles) from which a re-post counts as a near-duplicate.
TIANJIN_NEAR_DUPLICATE_THRESHOLD = 0.8
#: MinHash permutations per signature: more is more exact and slower (changing it re-indexes).
TIANJIN_MINHASH_PERMUTATIONS = 128

EXTENSIONS = {
    # One progress line every TIANJIN_PROGRESS_INTERVAL seconds (the CLI shows it).
    "crawler.progress.ProgressReporter": 500,
    # A worker of a distributed crawl: joins, waits for the others, leaves (off otherwise).
    "crawler.frontier.FrontierExtension": 100,
    # Scrapy's telnet console and (2.19) remote control each listen on a local port and let
    # whoever reaches it run code in the crawl; a background ingestion job needs neither. Not
    # loading them also saves about a second of start-up (the remote control loads aiohttp).
    "scrapy.extensions.telnet.TelnetConsole": None,
    "scrapy.extensions.remote_control.RemoteControl": None,
}
SPIDER_MIDDLEWARES = {
    # Nearest the engine: a distributed crawl's worker queues what a callback yields in Redis
    # together with clearing the callback's own request (off otherwise).
    "crawler.frontier.FrontierMiddleware": 5,
    # Every spider middleware wraps each request a callback yields in one more async generator
    # step. Depth limits and depth statistics are of no use to a crawl that follows URL shapes
    # (its own rules bound how deep it goes): off.
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
    # Two more layers over every callback's output, of no use here: the spider builds its URLs
    # from the site's short URL shapes (never near the 2,083-character limit) and makes every
    # request's meta afresh, never copying a response's (a test runs a crawl with both on).
    "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
    "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,
}
# The site needs no Referer header; computing the referrer policy of every request yielded by a
# callback cost 3 % of the crawl's CPU.
REFERER_ENABLED = False
#: Seconds between progress lines; 0 turns them off.
TIANJIN_PROGRESS_INTERVAL = 0
#: Log tracebacks of download errors (the CLI prints one line per error without them).
TIANJIN_LOG_TRACEBACKS = False

# --- Distributed crawls (docs/distributed.md) ---------------------------------------------------
#: Redis URL of a distributed crawl's shared frontier: with it, `crawl` seeds a crawl that
#: `tianjin-updates worker` processes do. The environment variable of the same name is the default.
TIANJIN_REDIS_URL = os.environ.get("TIANJIN_REDIS_URL", "")
#: Namespace of the keys in Redis; databases crawled through one Redis need one each.
TIANJIN_REDIS_PREFIX = "tianjin-updates"
#: Seconds the frontier must stay empty, with no worker holding work, before the crawl ends.
TIANJIN_FRONTIER_IDLE_TIMEOUT = 5.0
#: Seconds after its last heartbeat a worker counts as dead (its work goes back to the queue).
TIANJIN_WORKER_TTL = 15.0
#: Seconds between an idle worker's looks at the frontier (and the seeder's).
TIANJIN_FRONTIER_POLL_INTERVAL = 0.5
#: Seconds a crawl's keys outlive a seeder that died without deleting them.
TIANJIN_REDIS_KEY_TTL = 86400

# Scrapy's own per-minute stats line duplicates our progress output.
LOGSTATS_INTERVAL = 0
# Pages of this site are small; a huge one is a fault, not an article (Scrapy's default is 1 GiB).
DOWNLOAD_MAXSIZE = 16 * 1024 * 1024
DOWNLOAD_WARNSIZE = 4 * 1024 * 1024

# Items are dataclasses; the feed exports of `scrapy crawl -O` should write UTF-8 text.
FEED_EXPORT_ENCODING = "utf-8"
