"""An OpenAI Images API server for any diffusers text-to-image pipeline.

    POST /v1/images/generations   {"prompt", "model"?, "n"?, "size"?, "response_format"?}
    GET  /v1/images/files/{id}    a generated PNG, for response_format "url"
    GET  /v1/models               the served model, once the pipeline is loaded
    GET  /health                  200 when loaded, 503 while loading, 500 if loading failed

Configuration comes from the environment (the rendered Dockerfile sets it from the catalog):
TOOLKIT_MODEL (a Hugging Face repo id or a local directory), TOOLKIT_REVISION, TOOLKIT_SERVED_NAME,
TOOLKIT_DEVICE (cuda or cpu), TOOLKIT_DTYPE, TOOLKIT_STEPS, TOOLKIT_GUIDANCE, TOOLKIT_CPU_OFFLOAD,
and TOOLKIT_API_KEY (when set, the /v1 paths require it as a bearer token).
A gated model's token is read by huggingface_hub from HF_TOKEN_PATH, never from this code.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import inspect
import io
import logging
import os
import secrets
import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

log = logging.getLogger("diffusers-server")
MAX_SIDE = 2048
KEPT_FILES = 64


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
        )


class GenerationRequest(BaseModel):
    prompt: str = Field(min_length=1)
    model: str | None = None
    n: int = Field(default=1, ge=1, le=4)
    size: str = "1024x1024"
    response_format: Literal["b64_json", "url"] = "b64_json"


@dataclass
class State:
    settings: Settings
    pipeline: Any = None
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    files: OrderedDict[str, bytes] = field(default_factory=OrderedDict)


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


def parse_size(size: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in size.lower().split("x"))
    except ValueError:
        raise _invalid(f"size '{size}' is not WIDTHxHEIGHT, e.g. 1024x1024", "size") from None
    if not (8 <= width <= MAX_SIDE and 8 <= height <= MAX_SIDE) or width % 8 or height % 8:
        raise _invalid(f"size '{size}': each side must be a multiple of 8 up to {MAX_SIDE}", "size")
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
            state.pipeline = load(settings)
        except Exception as exc:  # reported by /health and the log, then the process exits
            state.error = f"{type(exc).__name__}: {exc}"
            log.error("loading %s failed: %s", settings.model, state.error)
            os._exit(1)
        log.info("loaded %s in %.1f s", settings.model, time.monotonic() - started)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=loader, name="loader", daemon=True).start()
        yield

    app = FastAPI(
        title="diffusers OpenAI Images API", docs_url=None, redoc_url=None, lifespan=lifespan
    )

    @app.middleware("http")
    async def require_api_key(request: Request, call_next: Any) -> Any:
        """With TOOLKIT_API_KEY set, every /v1 path needs `Authorization: Bearer <key>`."""
        expected = f"Bearer {settings.api_key}"
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
        width, height = parse_size(body.size)
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
                data.append({"url": str(request.url_for("image_file", file_id=file_id))})
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
    if "guidance_scale" in inspect.signature(pipeline.__call__).parameters:
        kwargs["guidance_scale"] = settings.guidance
    with state.lock:  # one generation at a time: a pipeline is not thread-safe
        return list(pipeline(**kwargs).images)


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
