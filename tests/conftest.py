"""Shared fixtures. Every test runs in its own user directories, with no user catalog."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from toolkit.catalog.configs import Catalog
from toolkit.cli.root import cli
from toolkit.paths import REPO_ROOT


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test reads or writes the user's own directories: catalog, cache, state, HF token."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.delenv("TOOLKIT_CATALOG", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("HF_HOME", str(home / "huggingface"))
    monkeypatch.setenv("HF_TOKEN_FILE", str(home / "no-hf-token"))


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return Catalog.load()


Run = Callable[..., Result]


@pytest.fixture
def run() -> Run:
    """Invoke the CLI in process; stdout and stderr are kept apart."""

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    return invoke


@pytest.fixture
def user_catalog(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a config file into a temporary user catalog and return the directory."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return tmp_path

    return write


def builtin_text(name: str) -> str:
    return (REPO_ROOT / "configs" / f"{name}.yaml").read_text(encoding="utf-8")


def untwinned(repo: str) -> str:
    """llama3-8b's config for a repo that no twin stands for: its twin's facts written in info:."""
    shape = "  layers: 32\n  kv_heads: 8\n  head_dim: 128\n  hidden: 4096\n  intermediate: 14336\n"
    shape += "  vocab: 128256\n  max_position: 8192\n"
    text = builtin_text("llama3-8b").replace("meta-llama/Meta-Llama-3-8B-Instruct", repo)
    return text.replace("  params_b: 8.03\n", "  params_b: 8.03\n" + shape)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-llama, tiny-diffusion and tiny-flux, made once per session by the demo's own script."""
    from tests.servers import load_module

    maker = load_module("make_tiny_models", REPO_ROOT / "scripts" / "make_tiny_models.py")
    root = tmp_path_factory.mktemp("models")
    maker.tiny_llama(root / "Tiny-Llama")
    maker.tiny_diffusion(root / "tiny-diffusion")
    maker.tiny_flux(root / "tiny-flux")
    maker.readable(root)
    return root
