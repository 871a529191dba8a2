"""The FastAPI app of `ganforge serve`: one page, a JSON API (with its OpenAPI schema) and PNG images.

Safety: runs are addressed by name (runs.RunIndex), never by path; uploads are capped in bytes (the whole
request body, counted as it arrives) and pixels and decoded by uploads.decode_upload; every error is a
JSON object {"error": "..."} with a 4xx status, never a stack trace; a Host header other than the allowed
ones is refused (DNS rebinding), and the page loads nothing from outside the server (a strict CSP).
"""
from __future__ import annotations

import logging
import re
from contextlib import asynccontextmanager
from copy import deepcopy
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

from fastapi import FastAPI, File, Form, Path as PathParam, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import GanforgeError
from .engine import MAX_FRAMES, MAX_N, MAX_SEED, Busy, Engine
from .runs import RunEntry, RunIndex, UnknownRun
from .uploads import MAX_PIXELS, MAX_UPLOAD_BYTES, MAX_UPSCALE_PIXELS, UploadError, decode_upload

log = logging.getLogger("ganforge.serve")
STATIC = Path(__file__).parent / "static"
PAGE_FILES = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
BODY_OVERHEAD = 64 * 1024  # multipart boundaries and headers around the uploaded file
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class ErrorBody(BaseModel):
    """Every error the API answers: one line saying what was wrong."""

    error: str


PNG = {"content": {"image/png": {}}, "description": "a PNG image"}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "bad parameters, or an operation this run's model cannot do"},
    404: {"model": ErrorBody, "description": "no run of that name"},
    422: {"model": ErrorBody, "description": "a parameter of the wrong type or out of range"},
    429: {"model": ErrorBody, "description": "too many requests waiting"},
}
UPLOAD_ERRORS = {**ERRORS, 413: {"model": ErrorBody, "description": "upload too large (bytes or pixels)"},
                 415: {"model": ErrorBody, "description": "not a PNG, JPEG, WebP or BMP image"}}


class PNGResponse(Response):
    media_type = "image/png"


# ---- ASGI middleware -------------------------------------------------------------------------------------
class _TooLarge(StarletteHTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than {limit:,} bytes")


async def _send_json(send, status: int, message: str) -> None:
    body = JSONResponse({"error": message}, status_code=status).body
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """Refuses foreign Host headers and bodies over `max_body` bytes (declared or counted); adds security headers."""

    def __init__(self, app, max_body: int, allowed_hosts: Sequence[str] | None):
        self.app, self.max_body = app, int(max_body)
        self.allowed = None if allowed_hosts is None else {h.lower().strip("[]") for h in allowed_hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.allowed is not None and "*" not in self.allowed:
            host = _hostname(headers.get("host", ""))
            if host not in self.allowed:
                return await _send_json(send, 400, f"host {host[:60]!r} is not served here (allowed: "
                                                   f"{', '.join(sorted(self.allowed))})")
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                return await _send_json(send, 400, "bad Content-Length header")
            if int(declared) > self.max_body:
                return await _send_json(send, 413, f"the request body is larger than {self.max_body:,} bytes")
        seen = 0

        async def counting_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:  # a chunked body that did not declare its size
                    raise _TooLarge(self.max_body)
            return message

        async def secure_send(message):
            if message["type"] == "http.response.start":
                extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                         (b"content-security-policy", CSP.encode()), (b"x-frame-options", b"DENY")]
                message = dict(message, headers=list(message.get("headers", [])) + extra)
            await send(message)

        return await self.app(scope, counting_receive, secure_send)


def _hostname(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8000
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


# ---- the app ---------------------------------------------------------------------------------------------
def create_app(runs: str | Path = "runs", device: str = "cpu", cache_size: int = 4,
               max_upload_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS,
               max_upscale_pixels: int = MAX_UPSCALE_PIXELS, allowed_hosts: Sequence[str] | None = None,
               max_waiting: int = 256) -> FastAPI:
    """The web app serving the runs found under `runs` (allowed_hosts None: any Host header)."""
    index = RunIndex(runs)
    engine = Engine(device=device, cache_size=cache_size, max_waiting=max_waiting)
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        engine.close()

    # No /docs or /redoc: FastAPI serves them with scripts from a CDN, and this server loads nothing from outside.
    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, title="ganforge serve", version="1",
                  description="Sample, explore, translate and upscale with "
                  "the runs of one folder. Runs are addressed by the names /api/runs lists. Images are PNG; "
                  "errors are JSON objects with one `error` line.")
    app.state.index, app.state.engine = index, engine
    app.add_middleware(GuardMiddleware, max_body=max_upload_bytes + BODY_OVERHEAD, allowed_hosts=allowed_hosts)
    scrub = _scrubber(index.root)
    page = {name: (STATIC / name).read_bytes() for name in ("index.html", *PAGE_FILES)}

    # ---- errors: always {"error": one line}, never a traceback ----
    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": scrub(message)}, status_code=status)

    @app.exception_handler(GanforgeError)
    async def _ganforge_error(request: Request, e: GanforgeError):
        status = e.status if isinstance(e, UploadError) else 404 if isinstance(e, UnknownRun) else \
            429 if isinstance(e, Busy) else 400
        return error(status, str(e))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, e: RequestValidationError):
        return error(422, _validation_message(e.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException):
        if e.status_code == 404 and e.detail == "Not Found":
            return error(404, f"no such page or endpoint: {request.method} {request.url.path[:200]}")
        if e.status_code == 405:
            return error(405, f"{request.method} is not allowed on {request.url.path[:200]}")
        return error(e.status_code, str(e.detail))

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, e: Exception):  # a bug: logged here, one line to the client
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error(500, f"internal error ({type(e).__name__}); the server log has the details")

    async def lookup(run: str) -> RunEntry:
        return await run_in_threadpool(index.get, run)  # a rescan reads files: off the event loop

    # ---- the page ----
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> HTMLResponse:
        return HTMLResponse(page["index.html"])

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in PAGE_FILES:
            raise StarletteHTTPException(404, f"no static file {name[:60]!r}")
        return Response(page[name], media_type=PAGE_FILES[name])

    # ---- JSON ----
    @app.get("/api/health", summary="Liveness and the number of requests waiting for the model worker")
    def health() -> dict[str, Any]:
        return {"ok": True, "waiting": engine.waiting, "models_loaded": len(engine.cache)}

    @app.get("/api/runs", summary="The runs found under the runs folder", responses=ERRORS)
    def list_runs() -> dict[str, Any]:
        out = []
        for name, entry in sorted(index.scan().items()):
            s = entry.summary()
            if not entry.error:
                s["thumbnail"] = f"/api/runs/{quote(name)}/thumbnail.png?ckpt={quote(s.get('checkpoint') or '')}"
            out.append(s)
        return {"runs": out}

    RunName = PathParam(..., min_length=1, max_length=200, description="a run name as /api/runs lists it")

    @app.get("/api/runs/{run}", summary="What a run's model can do (loads it)", responses=ERRORS)
    async def describe(run: str = RunName) -> dict[str, Any]:
        entry = await lookup(run)
        return await engine.run(engine.describe, entry)

    @app.get("/api/runs/{run}/thumbnail.png", response_class=PNGResponse, responses={200: PNG, **ERRORS},
             summary="A small image of what the run makes")
    async def thumbnail(run: str = RunName, ckpt: str | None = Query(None, max_length=100,
                                                                       description="ignored: busts caches")):
        entry = await lookup(run)
        return _png(await engine.run(engine.thumbnail, entry))

    Seed = Query(0, ge=0, le=MAX_SEED, description="seed of the latents")
    Cls = Query(None, alias="class", ge=0, description="class of a conditional model (default: classes cycle)")
    Trunc = Query(None, description="truncation: psi in [0, 2] on StyleGAN runs, else the z threshold (>= 0.04)")

    @app.get("/api/runs/{run}/sample.png", response_class=PNGResponse, responses={200: PNG, **ERRORS},
             summary="A grid of n samples from one seed")
    async def sample(run: str = RunName, seed: int = Seed, n: int = Query(16, ge=1, le=MAX_N),
                     cls: int | None = Cls, trunc: float | None = Trunc):
        entry = await lookup(run)
        return _png(await engine.run(engine.sample, entry, seed, n, cls, trunc))

    @app.get("/api/runs/{run}/classes.png", response_class=PNGResponse, responses={200: PNG, **ERRORS},
             summary="A class sheet of a conditional model: one row per class, seeds along the columns")
    async def classes(run: str = RunName, seed: int = Seed, per_class: int = Query(6, ge=1, le=16),
                      trunc: float | None = Trunc):
        entry = await lookup(run)
        return _png(await engine.run(engine.classes, entry, seed, per_class, trunc))

    @app.get("/api/runs/{run}/interpolate.png", response_class=PNGResponse, responses={200: PNG, **ERRORS},
             summary="Frames of a walk seed_a -> seed_b -> seed_a, side by side in one PNG strip "
                     "(headers X-Frames and X-Frame-Width)")
    async def interpolate(run: str = RunName, seed_a: int = Query(0, ge=0, le=MAX_SEED),
                          seed_b: int = Query(1, ge=0, le=MAX_SEED), frames: int = Query(16, ge=2, le=MAX_FRAMES),
                          space: str = Query("z", pattern="^[zw]$"), cls: int | None = Cls,
                          trunc: float | None = Trunc):
        entry = await lookup(run)
        data, count = await engine.run(engine.interpolate, entry, seed_a, seed_b, frames, space, cls, trunc)
        return _png(data, {"X-Frames": str(count)})

    @app.get("/api/runs/{run}/mix.png", response_class=PNGResponse, responses={200: PNG, **ERRORS},
             summary="Style-mixing grid of a StyleGAN run")
    async def mix(run: str = RunName, rows: str = Query("0-3", max_length=100), cols: str = Query("4-7", max_length=100),
                  levels: str = Query("coarse", max_length=20, description="coarse, middle, fine or layers A-B"),
                  psi: float = Query(1.0), cls: int | None = Cls):
        entry = await lookup(run)
        return _png(await engine.run(engine.mix, entry, _seeds(rows), _seeds(cols), levels, psi, cls))

    @app.get("/api/runs/{run}/edit.png", response_class=PNGResponse, responses={200: PNG, **ERRORS},
             summary="One seed's image moved along the run's saved latent directions (StyleGAN)")
    async def edit(run: str = RunName, seed: int = Seed,
                   strengths: str = Query("", max_length=2000, description="NAME:STRENGTH,... in stds of W"),
                   psi: float = Query(1.0), cls: int | None = Cls):
        entry = await lookup(run)
        return _png(await engine.run(engine.edit, entry, seed, _strengths(strengths), psi, cls))

    # ---- uploads ----
    async def read_upload(image: UploadFile) -> bytes:
        data = await image.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            raise UploadError(f"the upload is larger than {max_upload_bytes:,} bytes", 413)
        return data

    @app.post("/api/runs/{run}/translate", response_class=PNGResponse, responses={200: PNG, **UPLOAD_ERRORS},
              summary="Translate an uploaded image (Pix2Pix; CycleGAN in either direction)")
    async def translate(run: str = RunName, image: UploadFile = File(..., description="PNG, JPEG, WebP or BMP"),
                        direction: str | None = Form(None, max_length=10, description="AtoB or BtoA")):
        entry = await lookup(run)
        data = await read_upload(image)

        def job():
            return engine.translate(entry, decode_upload(data, max_upload_bytes, max_pixels), direction or None)

        return _png(await engine.run(job))

    @app.post("/api/runs/{run}/upscale", response_class=PNGResponse, responses={200: PNG, **UPLOAD_ERRORS},
              summary="Upscale an uploaded image (SRResNet / SRGAN)")
    async def upscale(run: str = RunName, image: UploadFile = File(..., description="PNG, JPEG, WebP or BMP")):
        entry = await lookup(run)
        data = await read_upload(image)

        def job():
            return engine.upscale(entry, decode_upload(data, max_upload_bytes, max_upscale_pixels))

        return _png(await engine.run(job))

    _names_in_schema(app, index)
    return app


def _png(data: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(data, media_type="image/png", headers={"Cache-Control": "no-cache", **(headers or {})})


def _seeds(text: str) -> list[int]:
    from ..tools.style import parse_seeds

    seeds = parse_seeds(text)
    if len(seeds) > 8:
        raise GanforgeError(f"at most 8 seeds per side of a mixing grid, got {len(seeds)} in {text[:40]!r}")
    return seeds


def _strengths(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.rpartition(":")
        try:
            if not sep or not name:
                raise ValueError
            out[name] = float(value)
        except ValueError:
            raise GanforgeError(f"bad strengths {text[:80]!r}: write NAME:STRENGTH,NAME:STRENGTH") from None
    if len(out) > 32:
        raise GanforgeError("at most 32 directions at once")
    return out


def _validation_message(errors: Sequence[dict[str, Any]]) -> str:
    """One line from pydantic's list: the first problem, naming the parameter and what was given."""
    if not errors:
        return "invalid request"
    e = errors[0]
    loc = [str(p) for p in e.get("loc", ()) if p not in ("query", "path", "body", "header")]
    where = ".".join(loc) or "request"
    given = e.get("input")
    shown = f" (got {given!r})" if isinstance(given, (str, int, float)) and len(repr(given)) <= 60 else ""
    more = f" (and {len(errors) - 1} more problem{'s' * (len(errors) > 2)})" if len(errors) > 1 else ""
    return f"{where}: {e.get('msg', 'invalid')}{shown}{more}"


def _scrubber(root: Path):
    """A function removing the runs folder's absolute and given paths from messages sent to clients."""
    paths = sorted({str(root), str(root.resolve())}, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(p) for p in paths if p not in ("", ".")) or r"(?!x)x")

    def scrub(message: str) -> str:
        return pattern.sub("<runs>", " ".join(str(message).split()))[:1000]

    return scrub


def _names_in_schema(app: FastAPI, index: RunIndex) -> None:
    """The OpenAPI schema lists the current run names as the `run` parameter's values."""
    base: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not base:
            base.update(get_openapi(title=app.title, version=app.version, description=app.description,
                                    routes=app.routes))
        schema = deepcopy(base)
        names = sorted(n for n, e in index.scan().items() if not e.error)
        if names:
            for ops in schema.get("paths", {}).values():
                for op in ops.values():
                    for p in op.get("parameters", []):
                        if p.get("name") == "run" and p.get("in") == "path":
                            p["schema"]["enum"] = names
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
