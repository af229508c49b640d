"""``fourfold-serve``: start the local web app on 127.0.0.1 (loopback only: nothing is exposed).

fourfold-serve [--port 8000] [--critical-checkpoint FILE] [--root FOLDER]
"""

from __future__ import annotations

import argparse
from pathlib import Path

HOST = "127.0.0.1"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fourfold-serve", description="The fourfold web app on http://127.0.0.1:PORT/"
    )
    p.add_argument("--port", type=int, default=8000, help="TCP port on 127.0.0.1 (default 8000)")
    p.add_argument("--root", default=".", help="folder holding .cache/critical (default: the current folder)")
    p.add_argument(
        "--critical-checkpoint", help="checkpoint for the critical page (default: the cached quick model)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    from fourfold.core.environment import configure_environment
    from fourfold.web.app import Settings, create_app

    configure_environment()
    args = parser().parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser().error(f"--port must be in 1..65535, got {args.port}")
    checkpoint = Path(args.critical_checkpoint).expanduser() if args.critical_checkpoint else None
    if checkpoint is not None and not checkpoint.is_file():
        parser().error(f"--critical-checkpoint {checkpoint} does not exist")
    app = create_app(Settings(root=Path(args.root).resolve(), critical_checkpoint=checkpoint))
    print(f"fourfold: open http://{HOST}:{args.port}/ (Ctrl+C stops the server)", flush=True)
    uvicorn.run(app, host=HOST, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
