"""The ``sibyl`` command line (DESIGN section 8).

Each sub-command parses its flags here and hands off to the module that does the work,
imported lazily so that ``sibyl keys show`` does not pay for torch or py-evm start-up.
"""

import argparse
import logging
import sys
from pathlib import Path

from chain.errors import SibylError
from chain.startup import prepare_process
from sidecars.config import MODES
from sidecars.errors import SidecarError
from sidecars.keys import address_of, load_key, new_key, write_key
from sidecars.serve import add_arguments as serve_arguments


def _keys_new(args: argparse.Namespace) -> int:
    key = new_key()
    if args.out:
        write_key(args.out, key)
        print(f"address {address_of(key)} key written to {args.out}")
    else:
        print(f"address {address_of(key)}\nprivate key {key.to_hex()}")
    return 0


def _keys_show(args: argparse.Namespace) -> int:
    print(address_of(load_key(args.file)))
    return 0


def _init(args: argparse.Namespace) -> int:
    from chain.genesis import load_genesis
    from chain.node import initialise

    block_hash = initialise(args.datadir, load_genesis(args.genesis))
    print(f"initialised {args.datadir} genesis=0x{block_hash.hex()}")
    return 0


def _genesis_complete(args: argparse.Namespace) -> int:
    import json

    from chain.genesis import complete_genesis, genesis_block, parse_genesis
    from chain.genesis_values import GenesisError

    try:
        raw = args.file.read_bytes()
    except OSError as exc:
        raise GenesisError(f"cannot read genesis file {args.file}: {exc.strerror}") from None
    text = json.dumps(complete_genesis(raw, str(args.file)), indent=2) + "\n"
    out = args.out or args.file
    out.write_text(text)
    block, _ = genesis_block(parse_genesis(text.encode(), str(out)))
    print(f"wrote {out} genesis=0x{block.header.hash.hex()}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from chain.cmd.run import default_datadir, run
    from chain.config import load_config
    from chain.node import temporary_datadir

    overrides = {
        "genesis": args.genesis,
        "block_time": args.block_time,
        "sidecar_mode": args.sidecars,
        "follow": args.follow,
        "metrics_port": args.metrics_port,
        "http_addr": args.http_addr,
        "http_port": args.http_port,
        "engine_port": args.engine_port,
        "jwt_secret": args.jwt_secret,
        "datadir": args.datadir,
        "dev": args.dev,
    }
    config = load_config(args.config, overrides)
    if config.datadir is None:
        if config.dev:
            config.datadir, config.temporary = temporary_datadir(), True
        else:
            config.datadir = default_datadir()
    return run(config)


def _blockfile(args: argparse.Namespace) -> int:
    from chain.cmd.blockfile import export_blocks, import_blocks
    from chain.config import NodeConfig

    config = NodeConfig(datadir=args.datadir, genesis=args.genesis)
    if args.command == "export":
        print(f"exported {export_blocks(config, args.file)} blocks to {args.file}")
    else:
        print(f"imported {import_blocks(config, args.file)} blocks from {args.file}")
    return 0


def _db_check(args: argparse.Namespace) -> int:
    from chain.storage.integrity import check_all
    from chain.storage.store import Store

    store = Store(args.datadir, readonly=True)  # beside a running node, too
    try:
        report = check_all(store)
    finally:
        store.close()
    if report.problems:
        for problem in report.problems:
            print(f"problem: {problem}")
        print(f"data dir {args.datadir} is damaged: {len(report.problems)} problem(s) found")
        return 1
    print(
        f"data dir {args.datadir} is sound: head {report.head}, {report.blocks} blocks, "
        f"{report.state_nodes} state trie nodes"
    )
    return 0


def _sidecar_serve(args: argparse.Namespace) -> int:
    from sidecars.serve import main as serve

    return serve(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sibyl", description="Sibyl: an AI-native EVM node")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    commands = parser.add_subparsers(dest="command", required=True)

    init = commands.add_parser("init", help="initialise a data dir from a genesis file")
    init.add_argument("--genesis", required=True, type=Path)
    init.add_argument("--datadir", required=True, type=Path)
    init.set_defaults(handler=_init)

    genesis_cmd = commands.add_parser("genesis", help="genesis files").add_subparsers(
        dest="genesis_command", required=True
    )
    complete = genesis_cmd.add_parser(
        "complete",
        help="write the system accounts that a genesis file's sibyl section needs into alloc",
    )
    complete.add_argument("file", type=Path)
    complete.add_argument("--out", type=Path, help="where to write it (default: in place)")
    complete.set_defaults(handler=_genesis_complete)

    run = commands.add_parser("run", help="run the node")
    run.add_argument("--dev", action="store_true", help="dev chain with an in-process producer")
    run.add_argument("--datadir", type=Path)
    run.add_argument("--genesis", type=Path)
    run.add_argument("--config", type=Path)
    run.add_argument("--http-addr", default=None)
    run.add_argument("--http-port", type=int, default=None)
    run.add_argument("--engine-port", type=int, default=None)
    run.add_argument("--jwt-secret", type=Path)
    run.add_argument("--block-time", type=float, default=None)
    run.add_argument("--sidecars", choices=MODES, default=None)
    run.add_argument("--follow", metavar="URL")
    run.add_argument("--metrics-port", type=int, default=None)
    run.set_defaults(handler=_run)

    sidecar = commands.add_parser("sidecar", help="model servers").add_subparsers(
        dest="sidecar_command", required=True
    )
    serve = sidecar.add_parser("serve", help="serve one model over gRPC")
    serve_arguments(serve)
    serve.set_defaults(handler=_sidecar_serve)

    keys_cmd = commands.add_parser("keys", help="executor and account keys").add_subparsers(
        dest="keys_command", required=True
    )
    keys_new = keys_cmd.add_parser("new", help="create a key (printed, or written to --out)")
    keys_new.add_argument("--out", type=Path)
    keys_new.set_defaults(handler=_keys_new)
    keys_show = keys_cmd.add_parser("show", help="print the address of a key file")
    keys_show.add_argument("file", type=Path)
    keys_show.set_defaults(handler=_keys_show)

    db = commands.add_parser("db", help="data dir maintenance").add_subparsers(
        dest="db_command", required=True
    )
    check = db.add_parser("check", help="verify head, canonical chain and head state")
    check.add_argument("--datadir", type=Path, required=True)
    check.set_defaults(handler=_db_check)

    for name, text in (("import", "import blocks from an RLP file"), ("export", "export blocks")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("file", type=Path)
        sub.add_argument("--datadir", type=Path, required=True)
        sub.add_argument("--genesis", type=Path)
        sub.set_defaults(handler=_blockfile)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    prepare_process()
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)-5s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.handler(args)
    except (SibylError, SidecarError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
