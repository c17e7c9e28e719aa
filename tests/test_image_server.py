"""The diffusers server with a tiny random FLUX pipeline (FluxTransformer2DModel, CLIP and T5
encoders, guidance embedding), in process: the FLUX code path runs for real, its size rule is
enforced, and with an API key its image URLs are signed links that open without the key."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image

from tests.servers import diffusers_server
from toolkit.protocols import probe as protocols

pytestmark = pytest.mark.models

KEY = "test-key-not-a-secret"


@pytest.fixture(scope="module")
def flux_server(tiny_models: Path) -> Iterator[str]:
    with diffusers_server(tiny_models / "tiny-flux", served_name="Tiny-FLUX") as url:
        yield url


@pytest.fixture(scope="module")
def keyed_flux_server(tiny_models: Path) -> Iterator[str]:
    with diffusers_server(
        tiny_models / "tiny-flux", served_name="Tiny-FLUX", api_key=KEY, url_seconds=3
    ) as url:
        yield url


def test_the_probe_and_the_official_client_pass_on_flux(flux_server: str) -> None:
    verdict = protocols.probe("openai-image", flux_server, "Tiny-FLUX", size="64x48")
    assert verdict.passed, protocols.describe(verdict)
    client = openai.OpenAI(base_url=f"{flux_server}/v1", api_key="unused")
    result = client.images.generate(
        model="Tiny-FLUX", prompt="a cat", size="32x64", n=2, response_format="b64_json"
    )
    images = [Image.open(io.BytesIO(base64.b64decode(d.b64_json or ""))) for d in result.data]
    assert [(i.format, i.size) for i in images] == [("PNG", (32, 64))] * 2


@pytest.mark.parametrize(
    ("size", "resized"), [("72x64", "64x64"), ("64x1000", "64x992"), ("40x40", "32x32")]
)
def test_a_size_flux_would_resize_is_refused_naming_the_rule(
    flux_server: str, size: str, resized: str
) -> None:
    answer = httpx.post(
        f"{flux_server}/v1/images/generations",
        json={"prompt": "a cat", "size": size},
        timeout=30,
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "message": f"size '{size}': each side must be a multiple of 16 up to 2048; this "
        f"pipeline would resize it to {resized}",
        "type": "invalid_request_error",
        "param": "size",
        "code": None,
    }


def _signed_url(server: str) -> str:
    answer = httpx.post(
        f"{server}/v1/images/generations",
        json={"prompt": "a cat", "size": "32x32", "response_format": "url"},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
    )
    answer.raise_for_status()
    url: str = answer.json()["data"][0]["url"]
    return url


def test_a_signed_url_opens_without_the_key_and_carries_no_key(keyed_flux_server: str) -> None:
    url = _signed_url(keyed_flux_server)
    assert KEY not in url
    query = httpx.URL(url).params
    assert set(query) == {"expires", "signature"}
    assert 0 < int(query["expires"]) - time.time() <= 3
    opened = httpx.get(url)  # as a browser would: no Authorization header
    assert opened.status_code == 200
    assert Image.open(io.BytesIO(opened.content)).size == (32, 32)
    bare = httpx.get(url.split("?")[0])
    assert (bare.status_code, bare.json()["error"]["code"]) == (401, "invalid_api_key")


def test_a_forged_or_expired_signature_is_refused(keyed_flux_server: str) -> None:
    url = _signed_url(keyed_flux_server)
    base, query = url.split("?")
    params = httpx.URL(url).params
    forged = [
        f"{base}?expires={params['expires']}&signature={'0' * 64}",
        f"{base}?expires={int(params['expires']) + 3600}&signature={params['signature']}",
        f"{base.replace('.png', 'a.png')}?{query}",
    ]
    for link in forged:
        refused = httpx.get(link)
        assert refused.status_code == 403, link
        assert refused.json()["error"]["message"] == (
            "the image URL's signature is wrong; use the URL exactly as it was returned"
        )
    time.sleep(max(0.0, int(params["expires"]) - time.time()) + 0.2)
    expired = httpx.get(url)
    assert expired.status_code == 403
    assert expired.json()["error"] == {
        "message": "the image URL has expired; generate the image again",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_signature",
    }
