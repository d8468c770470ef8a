"""``python -m crawler.replica``: serve a replica site on loopback until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
import time

from .generate import TEMPLATES
from .server import ReplicaServer
from .site import ReplicaSite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crawler.replica", description=__doc__)
    parser.add_argument(
        "--articles", type=int, default=300, help="number of articles (default 300)"
    )
    parser.add_argument("--seed", type=int, default=20200525, help="generation seed")
    parser.add_argument("--port", type=int, default=8080, help="port (0 = any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--per-page", type=int, default=20, help="listing items per page")
    parser.add_argument("--templates", help=f"comma-separated, among {','.join(TEMPLATES)}")
    parser.add_argument(
        "--no-faults", action="store_true", help="serve without HTTP/encoding faults"
    )
    parser.add_argument(
        "--no-reposts", action="store_true", help="serve without the two re-posted articles"
    )
    args = parser.parse_args(argv)
    templates = [t.strip() for t in args.templates.split(",")] if args.templates else None
    try:
        site = ReplicaSite(
            args.articles,
            args.seed,
            templates,
            faults=not args.no_faults,
            per_page=args.per_page,
            reposts=not args.no_reposts,
        )
        server = ReplicaServer(site, args.host, args.port).start()
    except (ValueError, OSError) as exc:
        print(f"replica: {exc}", file=sys.stderr)
        return 2
    print(f"Replica of Tianjin Updates: {len(site)} articles, seed {site.seed}", flush=True)
    print(f"  home      {server.base_url}", flush=True)
    print(f"  listing   {server.url(site.section_path)}", flush=True)
    print(f"  alias     {server.alias_url}", flush=True)
    print("Ctrl-C to stop.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
