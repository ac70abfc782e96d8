"""`python -m media`: run a media worker (settings from COLLAB_* variables, see README).

    python -m media                     # listen on COLLAB_MEDIA_HOST:COLLAB_MEDIA_PORT
    python -m media --port 5002 --processes 2
    python -m media --self-test         # only check the aiortc internals, then exit
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from media import net, node, selftest
from media.config import WorkerConfig
from media.worker import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m media", description="Collab media worker (WebRTC SFU).")
    parser.add_argument("--host", help="signalling address (default COLLAB_MEDIA_HOST or COLLAB_HOST)")
    parser.add_argument("--port", type=int, help="signalling port (default COLLAB_MEDIA_PORT or COLLAB_PORT+1)")
    parser.add_argument("--processes", type=int, help="worker processes sharing the port (default COLLAB_MEDIA_PROCESSES)")
    parser.add_argument("--self-test", action="store_true", help="check the aiortc internals and exit")
    parser.add_argument("--quick-self-test", action="store_true",
                        help="check only names and signatures of the aiortc internals (used on restarts)")
    parser.add_argument("--skip-self-test", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--log-level", default=os.environ.get("COLLAB_MEDIA_LOG", "INFO"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aioice").setLevel(logging.WARNING)
    logging.getLogger("websockets").setLevel(logging.WARNING)

    if args.self_test:
        try:
            print(selftest.run_sync())
        except selftest.SelfTestError as err:
            print(f"SELF-TEST FAILED: {err}", file=sys.stderr)
            return 3
        return 0

    config = WorkerConfig.from_env(host=args.host, port=args.port, processes=args.processes)
    if args.skip_self_test:
        config.self_test = False
    elif args.quick_self_test:
        config.self_test = "quick"
    if config.processes > 1:
        return node.run_node(config)

    try:
        net.run(serve(config))
    except selftest.SelfTestError as err:
        logging.getLogger("media").critical("SELF-TEST FAILED, not starting: %s", err)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
