"""`cloudrig metadata`: what a CloudStack instance sees, run inside it. A command only
this procedure has, so it lives here and reaches the command line through
`Procedure.cli_verbs` (tui/cli.py adds it where tui/registry.py lists it)."""

from __future__ import annotations

import json
from argparse import ArgumentParser, Namespace
from pathlib import Path

from tui.model import CliVerb

from . import metadata


def _arguments(p: ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group()
    source.add_argument("--router", metavar="ADDR",
                        help="the virtual router (default: the DHCP server of the newest lease)")
    source.add_argument("--iso", metavar="PATH",
                        help="a config drive ISO file or device (default: LABEL=config-2)")
    p.add_argument("--port", type=int, default=80, help="the router's metadata port")
    p.add_argument("--root", type=Path, metavar="DIR",
                   help="look for lease files under DIR (tests, chroots)")
    p.add_argument("--json", action="store_true")


def _run(args: Namespace) -> int:
    """What this CloudStack instance sees: its virtual router or its config drive."""
    if args.iso:
        data = metadata.from_drive(args.iso)
    elif args.router:
        data = metadata.from_router(args.router, args.port)
    else:
        drive = metadata.find_drive()
        if drive is not None and not args.root:
            data = metadata.from_drive(drive)
        else:
            data = metadata.from_router(metadata.find_router(args.root), args.port)
    if args.json:
        print(json.dumps(data.model_dump(mode="json"), indent=2, ensure_ascii=False,
                         default=str))
    else:
        print(metadata.table(data))
    return 0


METADATA = CliVerb(
    name="metadata",
    help="inside a CloudStack instance: the user data and metadata it sees (virtual router "
         "or config drive)",
    arguments=_arguments, run=_run)
