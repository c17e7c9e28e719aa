"""openai-image: OpenAI's image generation API (the toolkit's diffusers server)."""

from __future__ import annotations

import base64
import binascii
import shlex
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from toolkit.protocols import Example, ProtocolSpec
from toolkit.protocols.common import Failure, ProbeError
from toolkit.protocols.measure import Result, refused
from toolkit.protocols.openai_text import LISTING

if TYPE_CHECKING:
    import aiohttp

    from toolkit.protocols.client import Client

IMAGE_PROMPT = "A cat holding a sign that says hello world"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GENERATIONS = "/v1/images/generations"
EXAMPLE_IMAGE_SIZE = "256x256"  # a size a CPU answers in seconds, and a GPU at once
_SAVE_PNG = (
    "import base64, json, sys; "
    "open('image.png', 'wb').write(base64.b64decode(json.load(sys.stdin)['data'][0]['b64_json'])); "
    "print('saved image.png')"
)


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; ProbeError if it is not a PNG."""
    if len(data) < 24 or not data.startswith(PNG_MAGIC) or data[12:16] != b"IHDR":
        raise ProbeError(Failure.MALFORMED, "the image is not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


# --- probe checks ------------------------------------------------------------------------------


def generate(client: Client, model: str, size: str, response_format: str, n: int = 1) -> str:
    payload = {
        "model": model,
        "prompt": IMAGE_PROMPT,
        "size": size,
        "n": n,
        "response_format": response_format,
    }
    data = client.json(client.request("POST", GENERATIONS, json=payload))
    try:
        items = data["data"]
        if len(items) != n:
            raise ProbeError(Failure.MALFORMED, f"asked for {n} image(s), got {len(items)}")
        images = [_image_bytes(client, item, response_format) for item in items]
    except (KeyError, TypeError):
        raise ProbeError(
            Failure.MALFORMED, f"{GENERATIONS} is not an image list: {data!r:.200}"
        ) from None
    want = tuple(int(x) for x in size.split("x"))
    for image in images:
        got = png_size(image)
        if got != want:
            raise ProbeError(Failure.MALFORMED, f"asked for {size}, got a {got[0]}x{got[1]} image")
    return f"{n} PNG(s) of {size} via {response_format}"


def _image_bytes(client: Client, item: dict[str, Any], response_format: str) -> bytes:
    if response_format == "b64_json":
        try:
            return base64.b64decode(item["b64_json"], validate=True)
        except (binascii.Error, TypeError):
            raise ProbeError(Failure.MALFORMED, "b64_json is not valid base64") from None
    return client.request("GET", item["url"]).content


def checks(
    client: Client, model: str, vision: bool, size: str
) -> list[tuple[str, Callable[[], str]]]:
    return [
        ("image-b64", lambda: generate(client, model, size, "b64_json")),
        ("image-url", lambda: generate(client, model, size, "url")),
    ]


# --- bench -------------------------------------------------------------------------------------


def bench_body(
    model: str, messages: list[dict[str, Any]], output_tokens: int, ignore_eos: bool, size: str
) -> dict[str, Any]:
    return {
        "model": model,
        "prompt": IMAGE_PROMPT,
        "size": size,
        "n": 1,
        "response_format": "b64_json",
    }


async def send(
    http: aiohttp.ClientSession,
    base: str,
    body: dict[str, Any],
    result: Result,
    t0: float,
    keep_text: bool,
) -> None:
    """Generate images (b64_json) and check each decodes as a PNG of the asked size."""
    async with http.post(f"{base}{GENERATIONS}", json=body) as response:
        if await refused(response, result):
            return
        data = await response.json(content_type=None)
    want = tuple(int(x) for x in body["size"].split("x"))
    try:
        for item in data["data"]:
            if png_size(base64.b64decode(item["b64_json"], validate=True)) != want:
                raise ValueError(body["size"])
            result.images += 1
    except (KeyError, TypeError, ValueError, binascii.Error, ProbeError):
        result.error, result.detail = "malformed", f"not {body['n']} PNG(s) of {body['size']}"
        return
    result.first = result.first_answer = time.perf_counter() - t0


SPEC = ProtocolSpec(
    listing=LISTING,
    proxy_paths=(LISTING.path, GENERATIONS),
    proxy_prefixes=("/v1/images/files/",),
    example=Example(
        GENERATIONS,
        lambda model: {
            "model": model,
            "prompt": IMAGE_PROMPT,
            "size": EXAMPLE_IMAGE_SIZE,
            "response_format": "b64_json",
        },
        pipe=f"python3 -c {shlex.quote(_SAVE_PNG)}",
    ),
    checks=checks,
    bench_body=bench_body,
    bench_send=send,
)
