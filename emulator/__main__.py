"""Command line: `python -m emulator serve [--host] [--port] [--data-dir] [--config]`."""

import argparse
import logging
import sys

from emulator.app import MAX_BODY_BYTES
from emulator.config import ConfigError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m emulator", description="A local Salesforce over HTTPS.")
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve the emulator; prints one JSON line (URLs, CA bundle, credentials) when ready",
        description="Serve the emulator until SIGTERM or SIGINT. When ready, prints one JSON line on "
        "stdout with login_url, instance_url, ca_bundle, username, password, security_token, admin_url.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument(
        "--port", type=int, default=0, help="port to listen on; 0 picks a free port (default: %(default)s)"
    )
    serve.add_argument(
        "--data-dir",
        default=".emulator",
        help="directory for the org's data, sessions, API usage and TLS certificates; reused on restart "
        "(default: %(default)s)",
    )
    serve.add_argument(
        "--config", default=None, help="org config YAML file (default: the built-in default org)"
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        default=MAX_BODY_BYTES,
        help="largest request body accepted outside Bulk API uploads; larger ones get 413 "
        "(default: %(default)s)",
    )
    serve.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="log level of the messages written to stderr (default: %(default)s)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from emulator.server import serve  # imported late: `--help` should not need the server's imports
    from pipeline.collector import collect_old_objects_on_a_timer

    # The org keeps every record in memory: as the pipeline does with its merge, the collector scans
    # those long-lived objects once a minute instead of again and again as they grow.
    collect_old_objects_on_a_timer()
    try:
        serve(
            args.host,
            args.port,
            args.data_dir,
            args.config,
            max_body_bytes=args.max_body_bytes,
            log_level=args.log_level,
        )
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
