"""``fourfold-serve``: start the local web app on 127.0.0.1 (loopback only: nothing is exposed).

fourfold-serve [--port 8000] [--root FOLDER] [--checkpoints FOLDER ...]

``--port 0`` takes a free port; the first line printed names the address. SIGTERM and Ctrl+C (SIGINT)
stop the server after at most ``GRACE_S`` seconds for open requests, and everything the app wrote is
removed.
"""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

HOST = "127.0.0.1"
GRACE_S = 5  # seconds open requests get to finish at shutdown


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fourfold-serve", description="The fourfold web app on http://127.0.0.1:PORT/"
    )
    p.add_argument("--port", type=int, default=8000, help="TCP port on 127.0.0.1 (default 8000; 0: any free)")
    p.add_argument("--root", default=".", help="folder holding .cache/critical (default: the current folder)")
    p.add_argument(
        "--checkpoints",
        action="append",
        default=[],
        metavar="FOLDER",
        help="a folder of critical checkpoints (.pt) the critical page may offer; repeat for more",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser().error(f"--port must be in 0..65535, got {args.port}")
    folders = tuple(Path(f).expanduser().resolve() for f in args.checkpoints)
    for folder in folders:
        if not folder.is_dir():
            parser().error(f"--checkpoints {folder} is not a folder")

    import uvicorn

    from fourfold.core.environment import configure_environment
    from fourfold.web.app import Settings, create_app
    from fourfold.web.limits import Limits

    configure_environment()
    limits = Limits()
    # OpenCV's own decoder ceiling, read when cv2 first decodes: a second guard behind the header checks.
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(max(limits.image_pixels, limits.frame_pixels)))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, args.port))
    except OSError as err:
        parser().error(f"cannot listen on {HOST}:{args.port} ({err.strerror}); choose another --port")
    sock.listen(2048)  # connections made from now on wait in the backlog until uvicorn accepts them
    app = create_app(Settings(root=Path(args.root).resolve(), checkpoint_folders=folders, limits=limits))
    port = sock.getsockname()[1]
    print(f"fourfold: open http://{HOST}:{port}/ (Ctrl+C stops the server)", flush=True)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=GRACE_S)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
