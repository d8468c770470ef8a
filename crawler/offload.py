"""A helper process that takes the CPU-heavy, self-contained work of a crawl off the reactor.

Scrapy runs a crawl in one interpreter, and on a fast network the crawl is bound by that
interpreter's one core: every millisecond spent reading a page or writing a batch is a
millisecond the reactor does not download. The helper is a second process, started with the
crawl, that does two such jobs beside the reactor:

* the **extract lane**: the spider sends it a page (``str`` and URL) and awaits what
  ``crawler.extract`` read from it, while the reactor goes on downloading;
* the **store lane**: the store pipeline's writing thread sends it a batch of article records and
  waits for the batch to be signed and committed (``storage.repository``), holding neither the
  reactor nor the GIL of the crawl's process meanwhile.

Each lane is a socket pair with its own thread in the helper, so a batch being written never
delays a page being read. Messages are length-prefixed pickles: the callable (a module-level
function, pickled by name) and its arguments one way, the result or the exception back.

Nothing is lost when the helper fails: a call that cannot get its answer (the helper was killed,
or it never started) raises ``HelperGone``, and both users then do the work in their own process,
as they do with ``TIANJIN_HELPER_PROCESS = False``. The helper is a fresh interpreter that loads
only the modules of the work it is sent (``python -m crawler.offload``); it exits when the crawl's
end of its sockets is closed, or when the crawl's process dies.

Only one crawl's interpreter can use it: the callables travel by name, so the helper runs the
crawl's own code from the same import path.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("!I")
_PICKLE = pickle.HIGHEST_PROTOCOL


class HelperGone(RuntimeError):
    """The helper process is not there to answer (killed, crashed, stopped or never started)."""


# --- framing ---------------------------------------------------------------------------------


def _frame(message: Any) -> bytes:
    payload = pickle.dumps(message, _PICKLE)
    return _HEADER.pack(len(payload)) + payload


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            raise EOFError("the other end closed the socket")
        got += n
    return bytes(buf)


def _recv_message(sock: socket.socket) -> Any:
    (size,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    return pickle.loads(_recv_exact(sock, size))


# --- the helper's side -------------------------------------------------------------------------


def _answer(sock: socket.socket) -> None:
    """Serve one lane: call what is asked, send back ``(id, ok, value)``, until EOF."""
    while True:
        try:
            call_id, fn, args = _recv_message(sock)
        except (EOFError, OSError):
            return
        try:
            reply = (call_id, True, fn(*args))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller
            reply = (call_id, False, exc)
        try:
            frame = _frame(reply)
        except Exception as exc:  # noqa: BLE001 - an answer that cannot be pickled
            frame = _frame((call_id, False, RuntimeError(f"{type(exc).__name__}: {exc}")))
        try:
            sock.sendall(frame)
        except OSError:
            return


#: Called in the helper when its lanes are closed, before it exits (``on_helper_exit``).
_AT_EXIT: list[Callable[[], None]] = []


def on_helper_exit(fn: Callable[[], None]) -> None:
    """Run ``fn`` when the helper this runs in ends (e.g. to close its database connections)."""
    _AT_EXIT.append(fn)


def _serve(socks: list[socket.socket]) -> None:
    """The helper process: one thread per lane; ends when every lane is closed."""
    # Ctrl-C reaches the whole process group: the crawl decides how to stop, the helper follows
    # when its sockets close.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threads = [threading.Thread(target=_answer, args=(sock,), daemon=True) for sock in socks[1:]]
    for thread in threads:
        thread.start()
    _answer(socks[0])
    for thread in threads:
        thread.join()
    for fn in _AT_EXIT:
        try:
            fn()
        except Exception:
            logger.debug("Helper clean-up failed", exc_info=True)


# --- the crawl's side --------------------------------------------------------------------------


class _AsyncLane(asyncio.Protocol):
    """The extract lane as seen from the reactor: calls return awaitable futures."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.buffer = bytearray()
        self.next_id = 0
        self.closed = False
        #: Frames written in this turn of the loop, sent together at its end: one system call
        #: (and one wake-up of the helper) for the pages of a burst of responses, not one each.
        self.outgoing: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        while len(buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buf)
            end = _HEADER.size + size
            if len(buf) < end:
                break
            call_id, ok, value = pickle.loads(memoryview(buf)[_HEADER.size : end])
            del buf[:end]
            future = self.pending.pop(call_id, None)
            if future is None or future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(HelperGone("the helper process went away"))

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if self.closed or self.transport is None or self.transport.is_closing():
            future.set_exception(HelperGone("the helper process is not running"))
            return future
        self.next_id += 1
        self.pending[self.next_id] = future
        if not self.outgoing:
            loop.call_soon(self._send)
        self.outgoing.append(_frame((self.next_id, fn, args)))
        return future

    def _send(self) -> None:
        frames, self.outgoing = self.outgoing, []
        if self.closed or self.transport is None or self.transport.is_closing():
            return  # connection_lost has failed (or will fail) every pending call
        self.transport.write(b"".join(frames))


class Helper:
    """One helper process with an extract lane (async, reactor side) and a store lane (blocking,
    for one thread at a time). ``start()`` starts it; ``close()`` ends it."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | _Child | None = None
        self._extract_sock: socket.socket | None = None
        self._store_sock: socket.socket | None = None
        self._store_lock = threading.Lock()
        self._lane: _AsyncLane | None = None
        self._connecting: asyncio.Future[Any] | None = None
        self.gone = False

    def start(self) -> None:
        """Start the helper: a new interpreter that loads only what the work it is sent needs.
        (A fork shares the crawl's pages only until either process writes to them, and the
        crawl writes to most of them: a forked helper cost 75 MB, a fresh one 63.)"""
        extract_parent, extract_child = socket.socketpair()
        store_parent, store_child = socket.socketpair()
        env = dict(os.environ)
        # The crawl's own import path, whatever set it up (an editable install, PYTHONPATH, a
        # test runner): the helper unpickles functions of the same modules.
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        fds = (extract_child.fileno(), store_child.fileno())
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "crawler.offload", *map(str, fds)],
                pass_fds=fds,
                env=env,
                stdin=subprocess.DEVNULL,
            )
        finally:
            extract_child.close()
            store_child.close()
        self._extract_sock = extract_parent
        self._store_sock = store_parent
        logger.debug("Helper process %s started", self.process.pid)

    def fork(self) -> None:
        """Start the helper as a fork of this process, which must not have loaded Scrapy yet
        (``prestart``): the helper then shares the already-loaded extraction and storage modules
        with the crawl instead of loading its own copy, and is ready at once."""
        import gc

        extract_parent, extract_child = socket.socketpair()
        store_parent, store_child = socket.socketpair()
        # Objects that exist now are left alone by the collector from here on, in both
        # processes: a collection writes to every object it visits, which would copy the shared
        # pages it visits into each process.
        gc.collect()
        gc.freeze()
        try:
            pid = os.fork()
        except OSError:
            for sock in (extract_parent, extract_child, store_parent, store_child):
                sock.close()
            raise
        if pid == 0:  # the helper
            code = 0
            try:
                extract_parent.close()
                store_parent.close()
                _become_helper()
                _serve([extract_child, store_child])
            except BaseException:
                code = 1
                with contextlib.suppress(Exception):
                    logger.exception("The helper process failed")
            finally:
                os._exit(code)
        extract_child.close()
        store_child.close()
        self.process = _Child(pid)
        self._extract_sock = extract_parent
        self._store_sock = store_parent
        logger.debug("Helper process %s forked", pid)

    @property
    def alive(self) -> bool:
        return not self.gone and self.process is not None and self.process.poll() is None

    # -- extract lane ------------------------------------------------------------------------

    async def call_async(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in the helper, awaited on the reactor's asyncio loop."""
        lane = await self._async_lane()
        return await lane.call(fn, args)

    async def _async_lane(self) -> _AsyncLane:
        if self._lane is not None:
            return self._lane
        if self._connecting is None:
            if self._extract_sock is None or self.gone:
                raise HelperGone("the helper process is not running")
            loop = asyncio.get_running_loop()
            self._connecting = asyncio.ensure_future(
                loop.create_connection(_AsyncLane, sock=self._extract_sock)
            )
        _transport, lane = await asyncio.shield(self._connecting)
        self._lane = lane
        return lane

    # -- store lane ------------------------------------------------------------------------------

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in the helper, blocking the calling thread (not the reactor's)."""
        with self._store_lock:
            sock = self._store_sock
            if sock is None or self.gone:
                raise HelperGone("the helper process is not running")
            try:
                sock.sendall(_frame((0, fn, args)))
                _call_id, ok, value = _recv_message(sock)
            except (EOFError, OSError) as exc:
                self.gone = True
                raise HelperGone(f"the helper process went away ({exc})") from exc
        if ok:
            return value
        raise value

    # -- ending --------------------------------------------------------------------------------

    def close(self, timeout: float = 10.0) -> None:
        """Close both lanes and wait for the helper to exit (killed after ``timeout``)."""
        self.gone = True
        # Shut down at once: a transport's close() waits for a turn of the loop, which may not
        # come again once the reactor stops; the helper must see the end of its lanes now.
        if self._extract_sock is not None:
            with contextlib.suppress(OSError):
                self._extract_sock.shutdown(socket.SHUT_RDWR)
            try:
                if self._lane is not None and self._lane.transport is not None:
                    self._lane.transport.close()
            except RuntimeError:  # the loop it belonged to is closed already
                pass
            self._extract_sock.close()
            self._extract_sock = None
        with self._store_lock:
            if self._store_sock is not None:
                self._store_sock.close()
                self._store_sock = None
        process, self.process = self.process, None
        if process is not None:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class _Child:
    """A forked helper, seen through the few ``subprocess.Popen`` methods ``Helper`` uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: gone all the same
                self.returncode = -1
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"helper {self.pid}", timeout or 0)
            time.sleep(0.01)
        return code

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


#: glibc's ``mallopt`` parameter for the most malloc arenas a process keeps.
_M_ARENA_MAX = -8


def limit_malloc_arenas(count: int = 2) -> None:
    """At most ``count`` malloc arenas in this process (glibc; elsewhere nothing happens). glibc
    gives each thread that allocates its own arena, up to eight per core, and memory freed in
    one is not reused by the others: the crawl's threads (reactor, writer, lookups, DNS) and
    the helper's two lanes left 2 MB more in use at 10,000 articles. Call before threads start."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name).mallopt(_M_ARENA_MAX, count)


def _become_helper() -> None:
    """Set up a process to serve as the helper: its name, signals and collector."""
    import gc

    # "tianjin-helper" in ps and top, where a fork would otherwise look like the crawl itself.
    with contextlib.suppress(OSError), open("/proc/self/comm", "w") as comm:
        comm.write("tianjin-helper")
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # As in the crawl (crawler.runner.GC_THRESHOLDS; not imported: that module loads Scrapy).
    gc.set_threshold(10_000, 50, 100)


#: The helper ``prestart`` forked for the crawl this process is about to run, until it is taken.
_PRESTARTED: Helper | None = None


def _early_wanted(overrides: Mapping[str, Any]) -> bool:
    """``helper_wanted`` judged from the project's settings module and ``overrides`` alone,
    without Scrapy's ``Settings`` (loading it is what ``prestart`` must come before). A value
    it cannot read counts as no: the crawl then decides with its real settings, as without
    ``prestart``."""
    from crawler import settings as project

    def value(name: str, default: Any) -> Any:
        return overrides.get(name, getattr(project, name, default))

    def flag(raw: Any) -> bool:
        if isinstance(raw, str):
            text = raw.strip().lower()
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off", ""):
                return False
            raise ValueError(raw)
        return bool(raw)

    try:
        helper = value("TIANJIN_HELPER_PROCESS", "auto")
        if isinstance(helper, str) and helper.strip().lower() == "auto":
            delay = float(value("DOWNLOAD_DELAY", 0) or 0)
            return delay == 0 and not flag(value("AUTOTHROTTLE_ENABLED", False))
        return flag(helper)
    except (TypeError, ValueError):
        return False


def prestart(overrides: Mapping[str, Any], db_url: str | None = None) -> None:
    """Fork the helper of the crawl this process is about to run, before it loads Scrapy, when
    ``overrides`` (over the project's settings) will want one; ``db_url`` names the database
    whose driver to load first. ``helper_of`` takes it; one not taken is ended by
    ``discard_prestarted``. Where fork is missing or fails, nothing happens: ``helper_of`` then
    starts a fresh interpreter as before."""
    global _PRESTARTED
    if _PRESTARTED is not None or not hasattr(os, "fork") or not _early_wanted(overrides):
        return
    if "scrapy" in sys.modules or "twisted.internet.reactor" in sys.modules:
        return  # too late: the helper would share (and soon copy) the crawl's whole heap
    limit_malloc_arenas()  # for both processes, before either starts a thread
    import crawler.extract  # noqa: F401 - what the helper runs, loaded once for both processes
    import storage.repository  # noqa: F401

    if db_url:
        # The database's driver too (psycopg: about 9 MB), which both processes load anyway.
        from sqlalchemy.engine import make_url

        with contextlib.suppress(Exception):  # a bad URL is reported by the crawl, not here
            make_url(db_url).get_dialect().import_dbapi()

    helper = Helper()
    try:
        helper.fork()
    except OSError as exc:
        logger.debug("No forked helper (%s)", exc)
        return
    _PRESTARTED = helper


def discard_prestarted() -> None:
    """End the helper ``prestart`` forked, if no crawl took it."""
    global _PRESTARTED
    helper, _PRESTARTED = _PRESTARTED, None
    if helper is not None:
        helper.close()


def helper_wanted(settings: Any) -> bool:
    """Whether ``TIANJIN_HELPER_PROCESS`` asks for a helper: ``auto`` (the default) does when the
    crawl runs at full speed (no download delay, no AutoThrottle), the only case where its one
    core is what limits the crawl; a polite crawl waits on the network and needs none."""
    value = settings.get("TIANJIN_HELPER_PROCESS", "auto")
    if isinstance(value, str) and value.strip().lower() == "auto":
        return settings.getfloat("DOWNLOAD_DELAY", 0) == 0 and not settings.getbool(
            "AUTOTHROTTLE_ENABLED", False
        )
    return settings.getbool("TIANJIN_HELPER_PROCESS")


def helper_of(crawler: Any) -> Helper | None:
    """The crawl's helper process, started on first use when ``helper_wanted``; None when it is
    not wanted or could not start (the caller then does the work in the crawl's process)."""
    global _PRESTARTED
    if not helper_wanted(crawler.settings):
        discard_prestarted()
        return None
    helper = getattr(crawler, "_tianjin_helper", None)
    if helper is None:
        helper, _PRESTARTED = _PRESTARTED, None
        if helper is not None and not helper.alive:
            helper.close()
            helper = None
        if helper is None:
            helper = Helper()
            try:
                helper.start()
            except OSError as exc:
                logger.warning("No helper process (%s): pages are read and stored here", exc)
                helper.gone = True
        crawler._tianjin_helper = helper
        _close_with(crawler, helper)
    return None if helper.gone else helper


def _close_with(crawler: Any, helper: Helper) -> None:
    from scrapy import signals

    def closed() -> None:
        helper.close()

    # After spider_closed: the store pipeline writes its last batch through the helper first.
    crawler.signals.connect(closed, signal=signals.engine_stopped, weak=False)


# --- the jobs of the store lane ----------------------------------------------------------------

#: The helper's repositories, by (database URL, near-duplicate threshold, permutations).
_REPOSITORIES: dict[tuple[str, float, int], Any] = {}


def sign_and_save(
    config: tuple[str, float, int], batch: list[Any], now: Any, run_id: int | None
) -> Any:
    """``Repository.sign`` and ``save_articles`` of a batch of ``ArticleRecord``, run in the
    helper with an engine of its own; a ``StorageError`` goes back saying whether it may heal
    (the driver's exception behind it does not travel)."""
    from storage.db import StorageError, is_transient, make_engine
    from storage.repository import Repository

    repository = _REPOSITORIES.get(config)
    try:
        if repository is None:
            url, threshold, permutations = config
            engine = make_engine(url)
            repository = Repository(
                engine, near_duplicate_threshold=threshold, minhash_permutations=permutations
            )
            _REPOSITORIES[config] = repository
            on_helper_exit(engine.dispose)
        repository.sign(batch)
        return repository.save_articles(batch, now, run_id)
    except StorageError as exc:
        exc.transient = is_transient(exc)
        raise


__all__ = [
    "Helper",
    "HelperGone",
    "discard_prestarted",
    "helper_of",
    "helper_wanted",
    "on_helper_exit",
    "prestart",
    "sign_and_save",
]


def _main(argv: list[str]) -> None:
    """``python -m crawler.offload FD FD``: the helper process, serving the lanes it was given."""
    limit_malloc_arenas()
    _become_helper()
    # Load the work's modules now, while the crawl is still starting, not when the first page
    # and the first batch come: extraction first (pages come first), storage beside it.
    import crawler.extract  # noqa: F401

    threading.Thread(target=importlib.import_module, args=("storage.repository",)).start()
    _serve([socket.socket(fileno=int(fd)) for fd in argv])


if __name__ == "__main__":
    _main(sys.argv[1:])
