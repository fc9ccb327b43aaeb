"""Entry point of the `modeldeploy` and `kubectl-modeldeploy` commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from modeldeploy.cli import plugin, run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modeldeploy",
        description="Carry machine-learning models into production safely on Kubernetes.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run.register(commands)
    plugin.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
