"""An OpenAI Images API server for any diffusers text-to-image pipeline.

    POST /v1/images/generations   {"prompt", "model"?, "n"?, "size"?, "response_format"?}
    GET  /v1/images/files/{id}    a generated PNG, for response_format "url"; with an API key
                                  set, its URL is signed and expires, so a browser opens it
    GET  /v1/models               the served model, once the pipeline is loaded
    GET  /health                  200 when loaded, 503 while loading or while the worker is
                                  stalled, 500 if loading failed or the worker died

Configuration comes from the environment (the rendered Dockerfile sets it from the catalog):
TOOLKIT_MODEL (a Hugging Face repo id or a local directory), TOOLKIT_REVISION, TOOLKIT_SERVED_NAME,
TOOLKIT_DEVICE (cuda or cpu), TOOLKIT_DTYPE, TOOLKIT_STEPS, TOOLKIT_GUIDANCE, TOOLKIT_CPU_OFFLOAD,
TOOLKIT_API_KEY (when set, the /v1 paths require it as a bearer token), TOOLKIT_URL_SECONDS
(how long a signed image URL stays valid, default 300) and TOOLKIT_STALL_SECONDS (default 300).

One worker thread runs the pipeline, one job at a time, and beats a heartbeat while it waits for
jobs (every second) and at every denoising step. /health is 503 "stalled" when the worker has a
job and has not beaten for TOOLKIT_STALL_SECONDS: a hung generation (a stuck CUDA kernel, a
deadlock) turns the container unhealthy even though the HTTP thread still answers.

Sizes the pipeline would silently change are refused: FLUX packs 2x2 latent patches, so its sides
must be multiples of twice the VAE's downscale (16); a UNet pipeline needs multiples of 8.

Signed URLs: `?expires=UNIX&signature=HMAC-SHA256(file id, expires)` under a secret made anew by
each process. The API key never appears in a URL; a restart invalidates every link.
A gated model's token is read by huggingface_hub from HF_TOKEN_PATH, never from this code.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import inspect
import io
import logging
import math
import os
import queue
import secrets
import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

log = logging.getLogger("diffusers-server")
MAX_SIDE = 2048
KEPT_FILES = 64
FILES_PATH = "/v1/images/files/"
IDLE_BEAT_SECONDS = 1.0


@dataclass
class Settings:
    model: str
    served_name: str
    revision: str | None = None
    device: str = "cuda"
    dtype: str = "bfloat16"
    steps: int = 28
    guidance: float = 3.5
    cpu_offload: bool = False
    api_key: str = ""
    url_seconds: int = 300
    stall_seconds: float = 300.0

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            model=env["TOOLKIT_MODEL"],
            served_name=env["TOOLKIT_SERVED_NAME"],
            revision=env.get("TOOLKIT_REVISION") or None,
            device=env.get("TOOLKIT_DEVICE", "cuda"),
            dtype=env.get("TOOLKIT_DTYPE", "bfloat16"),
            steps=int(env.get("TOOLKIT_STEPS", "28")),
            guidance=float(env.get("TOOLKIT_GUIDANCE", "3.5")),
            cpu_offload=env.get("TOOLKIT_CPU_OFFLOAD", "") in ("1", "true"),
            api_key=env.get("TOOLKIT_API_KEY", ""),
            url_seconds=int(env.get("TOOLKIT_URL_SECONDS", "300")),
            stall_seconds=float(env.get("TOOLKIT_STALL_SECONDS", "300")),
        )


class GenerationRequest(BaseModel):
    prompt: str = Field(min_length=1)
    model: str | None = None
    n: int = Field(default=1, ge=1, le=4)
    size: str = "1024x1024"
    response_format: Literal["b64_json", "url"] = "b64_json"


class Worker:
    """The one thread that runs the pipeline, with a heartbeat of its own."""

    def __init__(self) -> None:
        self.jobs: queue.Queue[tuple[Any, dict[str, Any], Future[list[Any]]]] = queue.Queue()
        self.busy = False
        self.beaten = time.monotonic()
        self.thread = threading.Thread(target=self._loop, name="pipeline-worker", daemon=True)

    def beat(self) -> None:
        self.beaten = time.monotonic()

    def start(self) -> None:
        self.thread.start()

    def submit(self, pipeline: Any, kwargs: dict[str, Any]) -> list[Any]:
        done: Future[list[Any]] = Future()
        self.jobs.put((pipeline, kwargs, done))
        return done.result()

    def stalled(self, seconds: float) -> bool:
        """A job waits or runs, and the worker has not beaten for `seconds`."""
        pending = self.busy or not self.jobs.empty()
        return pending and time.monotonic() - self.beaten > seconds

    def _loop(self) -> None:
        while True:
            self.beat()
            try:
                pipeline, kwargs, done = self.jobs.get(timeout=IDLE_BEAT_SECONDS)
            except queue.Empty:
                continue
            self.busy = True
            try:
                done.set_result(list(pipeline(**kwargs).images))
            except Exception as exc:  # the request that asked gets the error
                done.set_exception(exc)
            finally:
                self.busy = False

    def on_step(self, pipeline: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> Any:
        """diffusers' callback_on_step_end: a beat at every denoising step."""
        self.beat()
        return kwargs


@dataclass
class State:
    settings: Settings
    pipeline: Any = None
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    files: OrderedDict[str, bytes] = field(default_factory=OrderedDict)
    multiple: int = 8  # each side of an image, from the pipeline once loaded
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    worker: Worker = field(default_factory=Worker)

    def signature(self, file_id: str, expires: int) -> str:
        message = f"{file_id}.{expires}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def link_error(self, file_id: str, expires: str, signature: str) -> str | None:
        """Why a signed image URL does not open, or None when it does."""
        if not expires.isdigit() or not secrets.compare_digest(
            self.signature(file_id, int(expires)), signature
        ):
            return "the image URL's signature is wrong; use the URL exactly as it was returned"
        if int(expires) <= time.time():
            return "the image URL has expired; generate the image again"
        return None


def load_pipeline(settings: Settings) -> Any:
    """Load any diffusers text-to-image pipeline, the way its model card does."""
    import torch
    from diffusers import DiffusionPipeline

    dtype = getattr(torch, settings.dtype)
    pipeline = DiffusionPipeline.from_pretrained(
        settings.model, revision=settings.revision, dtype=dtype
    )
    if settings.cpu_offload:
        pipeline.enable_model_cpu_offload()
    else:
        pipeline.to(settings.device)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def size_multiple(pipeline: Any) -> int:
    """The side multiple a pipeline keeps as asked: FLUX-style pipelines pack 2x2 latent
    patches (vae_scale_factor x 2), a transformer with a patch size patchifies by it (SD3), a
    UNet pipeline needs vae_scale_factor; never below 8, which every pipeline's check wants."""
    factor = int(getattr(pipeline, "vae_scale_factor", 8))
    transformer = getattr(pipeline, "transformer", None)
    patch = int(getattr(getattr(transformer, "config", None), "patch_size", 1) or 1)
    if hasattr(pipeline, "_pack_latents"):
        patch = 2
    return math.lcm(8, factor * patch)


def parse_size(size: str, multiple: int = 8) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in size.lower().split("x"))
    except ValueError:
        raise _invalid(f"size '{size}' is not WIDTHxHEIGHT, e.g. 1024x1024", "size") from None
    if not (multiple <= width <= MAX_SIDE and multiple <= height <= MAX_SIDE):
        raise _invalid(
            f"size '{size}': each side must be a multiple of {multiple} up to {MAX_SIDE}", "size"
        )
    if width % multiple or height % multiple:
        resized = f"{width - width % multiple}x{height - height % multiple}"
        raise _invalid(
            f"size '{size}': each side must be a multiple of {multiple} up to {MAX_SIDE}; "
            f"this pipeline would resize it to {resized}",
            "size",
        )
    return width, height


def _invalid(message: str, param: str | None = None) -> HTTPException:
    return HTTPException(
        400, {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    )


def create_app(settings: Settings, load: Any = load_pipeline) -> FastAPI:
    state = State(settings)

    def loader() -> None:
        started = time.monotonic()
        try:
            pipeline = load(settings)
            state.multiple = size_multiple(pipeline)
            state.pipeline = pipeline
        except Exception as exc:  # reported by /health and the log, then the process exits
            state.error = f"{type(exc).__name__}: {exc}"
            log.error("loading %s failed: %s", settings.model, state.error)
            os._exit(1)
        log.info("loaded %s in %.1f s", settings.model, time.monotonic() - started)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=loader, name="loader", daemon=True).start()
        state.worker.start()
        yield

    app = FastAPI(
        title="diffusers OpenAI Images API", docs_url=None, redoc_url=None, lifespan=lifespan
    )

    @app.middleware("http")
    async def require_api_key(request: Request, call_next: Any) -> Any:
        """With TOOLKIT_API_KEY set, every /v1 path needs `Authorization: Bearer <key>`, except
        an image file asked with a valid signature (a link a browser can open)."""
        expected = f"Bearer {settings.api_key}"
        query = request.query_params
        if settings.api_key and request.url.path.startswith(FILES_PATH) and "signature" in query:
            file_id = request.url.path[len(FILES_PATH) :].removesuffix(".png")
            error = state.link_error(file_id, query.get("expires", ""), query["signature"])
            if error:
                return JSONResponse(
                    {
                        "error": {
                            "message": error,
                            "type": "invalid_request_error",
                            "param": None,
                            "code": "invalid_signature",
                        }
                    },
                    status_code=403,
                )
            return await call_next(request)
        if (
            settings.api_key
            and request.url.path.startswith("/v1/")
            and not secrets.compare_digest(request.headers.get("authorization", ""), expected)
        ):
            return JSONResponse(
                {
                    "error": {
                        "message": "missing or wrong API key",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
                status_code=401,
            )
        return await call_next(request)

    @app.exception_handler(HTTPException)
    def openai_error(request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, dict) else {"message": str(exc.detail)}
        return JSONResponse({"error": detail}, status_code=exc.status_code)

    @app.get("/health")
    def health() -> JSONResponse:
        if state.error:
            return JSONResponse({"status": "failed", "error": state.error}, status_code=500)
        if state.pipeline is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        if not state.worker.thread.is_alive():
            return JSONResponse({"status": "failed", "error": "the worker died"}, status_code=500)
        if state.worker.stalled(settings.stall_seconds):
            idle = time.monotonic() - state.worker.beaten
            return JSONResponse(
                {"status": "stalled", "error": f"the worker has not progressed for {idle:.0f} s"},
                status_code=503,
            )
        return JSONResponse({"status": "ok"})

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        data = []
        if state.pipeline is not None:
            data.append(
                {
                    "id": settings.served_name,
                    "object": "model",
                    "created": 0,
                    "owned_by": "diffusers",
                }
            )
        return {"object": "list", "data": data}

    @app.post("/v1/images/generations")
    def generate(body: GenerationRequest, request: Request) -> dict[str, Any]:
        if body.model and body.model != settings.served_name:
            raise HTTPException(
                404,
                {
                    "message": f"model '{body.model}' does not exist; this "
                    f"server serves '{settings.served_name}'",
                    "type": "invalid_request_error",
                    "param": "model",
                    "code": "model_not_found",
                },
            )
        if state.pipeline is None:
            raise HTTPException(
                503,
                {
                    "message": "the model is still loading; retry shortly",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                },
            )
        width, height = parse_size(body.size, state.multiple)
        images = _run(state, body.prompt, width, height, body.n)
        data = []
        for image in images:
            png = io.BytesIO()
            image.save(png, format="PNG")
            if body.response_format == "b64_json":
                data.append({"b64_json": base64.b64encode(png.getvalue()).decode()})
            else:
                file_id = uuid.uuid4().hex
                with state.lock:
                    state.files[file_id] = png.getvalue()
                    while len(state.files) > KEPT_FILES:
                        state.files.popitem(last=False)
                url = str(request.url_for("image_file", file_id=file_id))
                if settings.api_key:
                    expires = int(time.time()) + settings.url_seconds
                    url += f"?expires={expires}&signature={state.signature(file_id, expires)}"
                data.append({"url": url})
        return {"created": int(time.time()), "data": data}

    @app.get("/v1/images/files/{file_id}.png", name="image_file")
    def image_file(file_id: str) -> Response:
        with state.lock:
            content = state.files.get(file_id)
        if content is None:
            raise HTTPException(
                404,
                {
                    "message": "no such image; files are kept for the last "
                    f"{KEPT_FILES} images only",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                },
            )
        return Response(content, media_type="image/png")

    return app


def _run(state: State, prompt: str, width: int, height: int, n: int) -> list[Any]:
    pipeline, settings = state.pipeline, state.settings
    kwargs: dict[str, Any] = {
        "prompt": prompt,
        "width": width,
        "height": height,
        "num_inference_steps": settings.steps,
        "num_images_per_prompt": n,
    }
    parameters = inspect.signature(pipeline.__call__).parameters
    if "guidance_scale" in parameters:
        kwargs["guidance_scale"] = settings.guidance
    if "callback_on_step_end" in parameters:
        kwargs["callback_on_step_end"] = state.worker.on_step
    # One generation at a time, on the worker: a pipeline is not thread-safe.
    return state.worker.submit(pipeline, kwargs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    uvicorn.run(create_app(Settings.from_env()), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
