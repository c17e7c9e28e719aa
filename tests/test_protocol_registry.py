"""One module per protocol: each Protocol has one, found by name, and its data reads light."""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

import toolkit.protocols
from toolkit.catalog.configs import Catalog
from toolkit.errors import ToolkitError
from toolkit.lifecycle import proxy
from toolkit.paths import REPO_ROOT
from toolkit.protocols import Listing, Protocol, ProtocolSpec, module_name, spec

PACKAGE = Path(toolkit.protocols.__file__).parent


@pytest.mark.parametrize("protocol", list(Protocol))
def test_every_protocol_has_a_module_with_a_spec(protocol: Protocol) -> None:
    assert importlib.util.find_spec(module_name(protocol)) is not None
    assert isinstance(spec(protocol), ProtocolSpec)
    assert spec(protocol).listing.path in spec(protocol).proxy_paths


def test_every_module_with_a_spec_is_a_protocol() -> None:
    """A protocol module left out of the enum would be unreachable (config.protocol is the enum)."""
    found = {
        path.stem.replace("_", "-")
        for path in PACKAGE.glob("*.py")
        if hasattr(importlib.import_module(f"toolkit.protocols.{path.stem}"), "SPEC")
    }
    assert found == set(Protocol)


def test_an_unknown_protocol_names_the_known_ones() -> None:
    with pytest.raises(ToolkitError) as caught:
        spec("grpc-text")
    assert str(caught.value) == (
        "unknown protocol 'grpc-text'; use one of openai-text, ollama-text, openai-image."
    )


def test_a_spec_s_data_imports_no_http_client() -> None:
    """The proxy conf and the Kubernetes render read the listing and paths without httpx/aiohttp."""
    code = (
        "import sys\n"
        "from toolkit.protocols import Protocol, spec\n"
        "for p in Protocol:\n"
        "    s = spec(p)\n"
        "    s.listing, s.proxy_paths, s.proxy_prefixes, s.polls, s.example.body('m')\n"
        "print(','.join(m for m in ('httpx', 'aiohttp') if m in sys.modules) or 'none')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "none"


@pytest.mark.parametrize("protocol", list(Protocol))
def test_the_proxy_passes_each_protocol_s_listing(catalog: Catalog, protocol: Protocol) -> None:
    config = next(catalog[n] for n in catalog if catalog[n].protocol == protocol)
    conf = proxy.nginx_conf(config, f"model:{catalog.backend(config).container_port}")
    passed = re.findall(r"location = (\S+) \{", conf)
    assert spec(protocol).listing.path in passed
    assert passed == list(spec(protocol).proxy_paths)


def test_a_default_tag_lists_the_untagged_name_too() -> None:
    listing = Listing("/api/tags", items="models", name="name", default_tag=":latest")
    answer = {"models": [{"name": "llama3:latest"}, {"name": "codellama:13b"}]}
    assert listing.names(answer) == ["llama3:latest", "codellama:13b", "llama3"]
