"""Run a command and write its own rusage as JSON: ``python bench/spawn.py OUT.json CMD...``.

Linux keeps a process's peak RSS across ``exec``, so a child forked from the (large) benchmark
process would report at least the benchmark's RSS as its own peak. This launcher is small and
starts the command as its child: the command's peak RSS is then its own. Imports nothing but
the standard library, on purpose.
"""

import json
import os
import subprocess
import sys


def main() -> int:
    out, cmd = sys.argv[1], sys.argv[2:]
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(
            {
                "code": code,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "maxrss_kb": usage.ru_maxrss,
                "launcher_maxrss_kb": __import__("resource").getrusage(0).ru_maxrss,
            },
            f,
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
