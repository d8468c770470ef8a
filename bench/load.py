"""The fast server alone: how many pages a second it serves to a simple concurrent client.

``python -m bench.load --port P --paths FILE --connections 32 --seconds 3`` prints one JSON line.
Keep-alive connections, gzip accepted, each connection walking the path list; the client is
plain asyncio Python too, so the figure is a lower bound of what the server can do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time


async def _worker(host: str, port: int, paths: list[str], start: int, stop_at: float) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    done = 0
    i = start
    try:
        while time.monotonic() < stop_at:
            path = paths[i % len(paths)]
            i += 1
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Accept-Encoding: gzip, deflate\r\n\r\n".encode("latin-1")
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            done += 1
    finally:
        writer.close()
    return done


async def _run(
    host: str, port: int, paths: list[str], connections: int, seconds: float
) -> dict[str, float]:
    started = time.monotonic()
    stop_at = started + seconds
    step = max(1, len(paths) // connections)
    counts = await asyncio.gather(
        *(_worker(host, port, paths, k * step, stop_at) for k in range(connections))
    )
    elapsed = time.monotonic() - started
    return {"requests": sum(counts), "seconds": elapsed, "pages_per_s": sum(counts) / elapsed}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--paths", required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    with open(args.paths, encoding="utf-8") as f:
        paths = [line.strip() for line in f if line.strip()]
    result = asyncio.run(_run(args.host, args.port, paths, args.connections, args.seconds))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
