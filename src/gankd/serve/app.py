"""The viewer's web app (Starlette): the page and its script, the models and what each can do, and
one JSON endpoint per action. Requests are JSON (uploads as base64 text, so no form parsing is
needed); answers are JSON with the image as a PNG data URL, or `{"error": one line}` with a 4xx."""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import threading
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gankd.errors import GankdError
from gankd.images import png_bytes
from gankd.serve.models import Served

STATIC = Path(__file__).with_name("static")
MAX_BODY = 32 * 2**20  # bytes of a request: an uploaded photo as base64, with room to spare

ARGUMENTS = {  # action (a model's method) -> the JSON fields it reads: its parameters and their types
    "sample": {"seed": int, "truncation": float, "class_index": int, "toward": int, "t": float},
    "project": {"image": bytes, "steps": int},
    "translate": {"image": bytes, "direction": str},
    "age": {"image": bytes, "value": float},
}
TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bytes: "an image as base64 text"}


class BadRequest(GankdError):
    """A request the page would never send: not JSON, a missing or mistyped field, an unknown model."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def arguments(method, fields: dict) -> dict:
    """The method's keyword arguments from a request's fields, of the types ARGUMENTS names; a
    field left out (or null) takes the method's default, where it has one."""
    defaults = inspect.signature(method).parameters
    given = {}
    for name, kind in ARGUMENTS[method.__name__].items():
        if fields.get(name) is not None:
            given[name] = typed(name, fields[name], kind)
        elif defaults[name].default is inspect.Parameter.empty:
            raise BadRequest(f"missing field {name!r}")
    return given


def typed(name: str, value, kind: type):
    """A JSON value as `kind` (an image: the bytes its base64 text or data URL holds)."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, str if kind is bytes else kind) or isinstance(value, bool):
        raise BadRequest(f"{name!r} must be {TYPE_NAMES[kind]}, not {json.dumps(value)[:40]}")
    if kind is bytes:
        try:
            return base64.b64decode(value.partition(",")[2] if value.startswith("data:") else value, validate=True)
        except binascii.Error:
            raise BadRequest(f"{name!r} is not valid base64") from None
    return value


def data_url(image) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode()


def make_app(models: list[Served]) -> Starlette:
    """The app serving `models` (their index in this list names them in the API)."""
    busy = threading.Lock()  # one model call at a time: torch already uses every core

    def page(request: Request) -> FileResponse:
        return FileResponse(STATIC / "index.html")

    def listing(request: Request) -> JSONResponse:
        return JSONResponse({"models": [{"id": i, **m.describe()} for i, m in enumerate(models)]})

    async def act(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            method = action_of(request.path_params["model"], request.path_params["action"])
            if len(body) > MAX_BODY:
                raise BadRequest(f"the request is {len(body) / 2**20:.0f} MiB; at most {MAX_BODY // 2**20} MiB", 413)
            try:
                fields = json.loads(body or b"{}")
            except ValueError:
                raise BadRequest("the request body is not JSON") from None
            if not isinstance(fields, dict):
                raise BadRequest("the request body must be a JSON object")
            image, facts = await run_in_threadpool(locked, method, arguments(method, fields))
        except GankdError as err:
            return JSONResponse({"error": str(err)}, getattr(err, "status", 400))
        return JSONResponse({"image": data_url(image), **facts})

    def action_of(index: str, action: str):
        """The method of model `index` that does `action`."""
        if not index.isdigit() or int(index) >= len(models):
            raise BadRequest(f"no model {index!r}: there are {len(models)} (0-{len(models) - 1})", 404)
        model = models[int(index)]
        if action not in model.actions:
            raise BadRequest(f"{model.name} ({model.family} family) cannot {action}; it can "
                             f"{' or '.join(model.actions)}", 404)
        return getattr(model, action)

    def locked(method, kwargs: dict):
        with busy:
            return method(**kwargs)

    return Starlette(routes=[
        Route("/", page),
        Route("/api/models", listing),
        Route("/api/models/{model}/{action}", act, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC)),
    ])
