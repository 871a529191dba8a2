"""`ganforge serve`: a local web page (and JSON API) for the runs of one folder.

`create_app` builds the FastAPI app; `serve` binds the socket (127.0.0.1 unless told otherwise) and runs it
under uvicorn until Ctrl-C.
"""
from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path

from ..errors import GanforgeError

__all__ = ["create_app", "serve", "bind", "is_loopback"]


def create_app(*args, **kwargs):
    """The web app (see app.create_app)."""
    from .app import create_app as _create

    return _create(*args, **kwargs)


def is_loopback(host: str) -> bool:
    """Whether a host name or address only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one), or one clear error."""
    if not 0 <= int(port) <= 65535:
        raise GanforgeError(f"--port must lie in 0..65535, got {port}")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise GanforgeError(f"cannot resolve --host {host!r}: {e.strerror}") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise GanforgeError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.set_inheritable(True)
    return sock


def serve(runs: str | Path = "runs", host: str = "127.0.0.1", port: int = 8000, device: str = "cpu",
          cache_size: int = 4, max_upload_mb: float = 8.0, echo=print) -> None:
    """Serve the runs under `runs` at http://host:port/ until interrupted."""
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401  (FastAPI's form parser)
        import uvicorn
    except ImportError as e:
        raise GanforgeError(f"`ganforge serve` needs {e.name}: pip install 'ganforge[serve]'") from None
    from PIL import Image

    from .uploads import MAX_PIXELS

    runs = Path(runs)
    if not runs.is_dir():
        raise GanforgeError(f"no runs folder {runs} (give one with --runs)")
    if not 0 < max_upload_mb <= 1024:
        raise GanforgeError(f"--max-upload-mb must lie in (0, 1024], got {max_upload_mb}")
    if cache_size < 1:
        raise GanforgeError(f"--cache must be >= 1, got {cache_size}")
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own bomb check, on top of the per-operation pixel caps
    local = is_loopback(host)
    allowed = ["127.0.0.1", "localhost", "::1"] if local else None  # DNS rebinding: only local names
    app = create_app(runs, device=device, cache_size=cache_size, max_upload_bytes=int(max_upload_mb * 2**20),
                     allowed_hosts=allowed)
    sock = bind(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    n = len([e for e in app.state.index.scan().values() if not e.error])
    echo(f"ganforge: serving {n} run(s) from {runs} at http://{shown}:{bound}/ (Ctrl-C stops)")
    if not local:
        print(f"ganforge: warning: listening on {host}, reachable from other machines; the server has no "
              "authentication", file=sys.stderr)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
