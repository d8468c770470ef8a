"""Run a command, sample the memory of its process tree, write its usage as JSON.

``python bench/spawn.py OUT.json CMD...``

Linux keeps a process's peak RSS across ``exec``, so a child forked from the (large) benchmark
process would report at least the benchmark's RSS as its own peak. This launcher is small and
starts the command as its child: the command's figures are then its own. Imports nothing but
the standard library, on purpose.

Memory. A command may fork helper processes (multiprocessing), and ``ru_maxrss`` from
``wait4`` is only the largest single process's peak. So a thread of this launcher (not of the
measured command) samples the command's whole process tree every ``INTERVAL`` seconds: the
command and all its descendants, found through ``/proc/<pid>/task/*/children`` when the kernel
has it, else through the parent pids of a scan of ``/proc``. For each process it reads ``Pss:``
and ``Pss_Anon:`` from ``/proc/<pid>/smaps_rollup`` and ``VmRSS`` from ``/proc/<pid>/status``,
and writes the peak of each sum over the tree. PSS (proportional set size) counts a page shared
by k processes as 1/k in each, so the pages a forked helper shares with its parent are not
counted twice. Its anonymous part (the heaps) is only ever shared within the tree, so its sum
counts each page of the tree once; its file-backed part (interpreter, libraries) is shared with
every process on the machine that maps the same files, so it depends a little on what else
runs. A sample during which a process of the tree ended or started is discarded (see
``Sampler.sample``).
When ``smaps_rollup`` cannot be read for a live process (an old kernel, no permission), its RSS
stands in for its PSS, and ``pss_unreadable`` counts such processes.

CPU. ``wait4`` of the command gives its CPU seconds plus those of every descendant that was
waited for (a joined multiprocessing child is waited for by ``join()``; its parent's rusage
then includes it). A descendant whose parent ended first would not be: this launcher makes
itself the "child subreaper" of the tree (``prctl(PR_SET_CHILD_SUBREAPER)``), so such orphans
become its own children, and it waits for every one of them (SIGTERM after ``LINGER`` seconds
past the command's exit, SIGKILL 5 s later) and adds their CPU seconds. ``cpu_s`` is then the
CPU of the whole tree, exactly; ``orphans`` and ``orphans_killed`` say whether any was seen.
"""

import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time

#: Seconds between two samples of the tree's memory. One sample reads a few small /proc files
#: per process (about 1 ms for a 300 MB process on the machine it was written on).
INTERVAL = 0.1
#: Seconds the launcher waits, after the command exited, for descendants it left behind.
LINGER = 10.0
PR_SET_CHILD_SUBREAPER = 36
HAS_CHILDREN_FILES = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


def become_subreaper() -> bool:
    """Whether orphaned descendants will be re-parented to this process."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as f:
                found.extend(int(p) for p in f.read().split())
        except OSError:
            continue
    return found


def _parents() -> dict[int, list[int]]:
    """Every process's children, from the parent pid of each ``/proc/<pid>/stat``."""
    by_parent: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        by_parent.setdefault(ppid, []).append(int(name))
    return by_parent


def descendants(root: int) -> list[int]:
    """The pids of ``root``'s descendants (``root`` left out)."""
    if HAS_CHILDREN_FILES:
        children = _children
    else:
        by_parent = _parents()

        def children(pid: int) -> list[int]:
            return by_parent.get(pid, [])

    out: list[int] = []
    todo = children(root)
    seen = {root}
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        out.append(pid)
        todo.extend(children(pid))
    return out


def _field_kb(data: bytes, name: bytes) -> int:
    at = data.find(name)
    if at < 0:
        return 0  # a zombie: no memory left
    return int(data[at + len(name) :].split(None, 1)[0])


def memory(pid: int) -> tuple[int, int, int, bool] | None:
    """``(pss_kb, rss_kb, pss_anon_kb, pss_read)`` of a process; None when it has gone or is
    going (its memory being released); zeros for a zombie."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            status = f.read()
    except OSError:
        return None
    if b"\nState:\tZ" in status:
        return 0, 0, 0, True
    rss = _field_kb(status, b"\nVmRSS:")
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            rollup = f.read()
    except PermissionError:
        pass
    except FileNotFoundError:
        if not os.path.exists(f"/proc/{pid}/status"):
            return None
        # A kernel without smaps_rollup (before 4.14).
    except OSError:
        return None  # ESRCH: the process is exiting, its memory already gone
    else:
        return _field_kb(rollup, b"\nPss:"), rss, _field_kb(rollup, b"\nPss_Anon:"), True
    return rss, rss, _field_kb(status, b"\nRssAnon:"), False


class Sampler(threading.Thread):
    """Samples the memory of ``root``'s descendants until ``stop()``."""

    def __init__(self, root: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.peak_pss_kb = 0
        self.peak_rss_sum_kb = 0
        self.peak_pss_anon_kb = 0
        self.peak_processes = 0
        self.samples = 0
        self.discarded = 0
        self.seen: set[int] = set()
        self.unreadable: set[int] = set()
        self._stopped = threading.Event()

    def sample(self) -> None:
        """One sample of the tree. It is discarded when a process of the tree ended (or a new
        one started) while it was read: the files of different processes are not read at one
        instant, and a process read after another released the pages they shared would get a
        larger share of them than it had when the other was read, counting them more than once.
        """
        pss = rss = anon = count = 0
        pids = descendants(self.root)
        for pid in pids:
            figures = memory(pid)
            if figures is None:
                self.discarded += 1
                return
            pss += figures[0]
            rss += figures[1]
            anon += figures[2]
            count += 1
            self.seen.add(pid)
            if not figures[3]:
                self.unreadable.add(pid)
        if sorted(descendants(self.root)) != sorted(pids):
            self.discarded += 1
            return
        self.samples += 1
        self.peak_pss_kb = max(self.peak_pss_kb, pss)
        self.peak_rss_sum_kb = max(self.peak_rss_sum_kb, rss)
        self.peak_pss_anon_kb = max(self.peak_pss_anon_kb, anon)
        self.peak_processes = max(self.peak_processes, count)

    def run(self) -> None:
        while True:
            self.sample()
            if self._stopped.wait(self.interval):
                return

    def stop(self) -> None:
        self._stopped.set()
        self.join()


def _signal_all(root: int, sig: int) -> int:
    pids = descendants(root)
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    return len(pids)


def main() -> int:
    out, cmd = sys.argv[1], sys.argv[2:]
    subreaper = become_subreaper()
    proc = subprocess.Popen(cmd)
    sampler = Sampler(os.getpid(), INTERVAL)
    sampler.start()
    code: int | None = None
    cpu = command_cpu = 0.0
    maxrss = orphans = killed = 0
    deadline = term_sent = kill_sent = None
    while True:
        try:
            pid, status, usage = os.wait4(-1, 0 if code is None else os.WNOHANG)
        except ChildProcessError:
            break  # nothing left to wait for
        if pid == 0:  # descendants left behind by the command, still running
            now = time.monotonic()
            if deadline is None:
                deadline = now + LINGER
            elif term_sent is None and now >= deadline:
                killed = _signal_all(os.getpid(), signal.SIGTERM)
                term_sent = now
            elif kill_sent is None and term_sent is not None and now >= term_sent + 5:
                _signal_all(os.getpid(), signal.SIGKILL)
                kill_sent = now
            time.sleep(0.05)
            continue
        cpu += usage.ru_utime + usage.ru_stime
        maxrss = max(maxrss, usage.ru_maxrss)
        if pid == proc.pid:
            code = os.waitstatus_to_exitcode(status)
            proc.returncode = code
            command_cpu = usage.ru_utime + usage.ru_stime
        else:
            orphans += 1
    sampler.stop()
    assert code is not None
    own = resource.getrusage(resource.RUSAGE_SELF)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(
            {
                "code": code,
                "cpu_s": cpu,
                "command_cpu_s": command_cpu,
                "maxrss_kb": maxrss,
                "peak_pss_kb": sampler.peak_pss_kb,
                "peak_rss_sum_kb": sampler.peak_rss_sum_kb,
                "peak_pss_anon_kb": sampler.peak_pss_anon_kb,
                "peak_processes": sampler.peak_processes,
                "processes_seen": len(sampler.seen),
                "pss_unreadable": len(sampler.unreadable),
                "samples": sampler.samples,
                "samples_discarded": sampler.discarded,
                "interval_s": INTERVAL,
                "tree_from": "children" if HAS_CHILDREN_FILES else "proc-scan",
                "subreaper": subreaper,
                "orphans": orphans,
                "orphans_killed": killed,
                "launcher_cpu_s": own.ru_utime + own.ru_stime,
                "launcher_maxrss_kb": own.ru_maxrss,
            },
            f,
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
