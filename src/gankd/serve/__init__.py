"""`gankd serve`: a local web viewer of checkpoints (`app.py`: the routes; `models.py`: what each
model family can do; `static/`: the page, offline). The checkpoints load and the port is taken
before the server starts, so a bad checkpoint or a busy port is one line, not a half-started server."""

from __future__ import annotations

import socket
from collections.abc import Callable

from gankd.errors import GankdError


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (port 0: a free one the system picks), ready to accept."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as err:
        raise GankdError(f"cannot listen on {host}:{port} ({err.strerror or err}); choose another --host or "
                         "--port (0: any free port)") from None


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def server(app):
    """A uvicorn server of `app`, quiet but for warnings: `.run(sockets=[sock])` serves until
    `.should_exit` is set (or Ctrl-C in the main thread)."""
    import uvicorn

    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))


def serve(ckpts: list[str], host: str = "127.0.0.1", port: int = 7860, device: str = "cpu",
          announce: Callable[[str], None] = print) -> None:
    """Load the checkpoints, take the port, say the URL, and serve until Ctrl-C."""
    from gankd.serve.app import make_app
    from gankd.serve.models import load_models

    models = load_models(ckpts, device)
    sock = listening_socket(host, port)
    announce(f"serving {len(models)} model{'s' * (len(models) > 1)} at {url_of(sock)} (Ctrl-C stops)")
    try:
        server(make_app(models)).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn stops cleanly, then passes Ctrl-C on: the usual way to end a viewer
        pass
    finally:
        sock.close()
