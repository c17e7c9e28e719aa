"""The preflight without an engine: the gated model's token and the exposure checks."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from toolkit.catalog.configs import Catalog
from toolkit.errors import UsageError
from toolkit.host import engine as docker_engine
from toolkit.lifecycle import credentials, preflight

GATED = Catalog.load()["llama3-8b"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_TOKEN_FILE", str(tmp_path / "absent"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return tmp_path


def test_gated_model_without_a_token_is_refused(home: Path) -> None:
    with pytest.raises(docker_engine.EngineError) as refused:
        credentials.token_source(GATED)
    assert str(refused.value).startswith("Llama3-8B is gated and no Hugging Face token was found;")
    assert str(refused.value).endswith("(huggingface-cli login), or set HF_TOKEN_FILE or HF_TOKEN.")


def test_the_token_is_handed_over_in_a_folder_only_root_enters(home: Path, monkeypatch) -> None:
    """start hands the token over as a file of its own (stop removes it: tests/engine). The
    server's non-root user reads it inside the container; no other host user reaches it."""
    monkeypatch.setenv("HF_TOKEN", "hf_example")
    assert credentials.token_source(GATED) is None, "no file of the user's: start writes one"
    path = credentials.hand_over_token(GATED.name, None)
    assert path.read_text() == "hf_example"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    own = home / "token"
    own.write_text("hf_from_file\n")
    own.chmod(0o600)
    assert credentials.hand_over_token(GATED.name, own).read_text() == "hf_from_file"


def test_token_file_is_used_as_it_is(home: Path, monkeypatch) -> None:
    token = home / "token"
    token.write_text("hf_from_file\n")
    monkeypatch.setenv("HF_TOKEN_FILE", str(token))
    assert credentials.token_source(GATED) == token
    assert credentials.token_source(Catalog.load()["qwen2-72b_4"]) is None, "not gated: no token"


def test_exposure_without_a_usable_key_is_bad_input() -> None:
    """Refused before anything starts, with the usage error's exit status (2)."""
    config = Catalog.load()["demo-text"]
    with pytest.raises(UsageError) as no_key:
        preflight.check_exposure(config, None, "0.0.0.0", None)
    assert str(no_key.value) == (
        "publishing demo-text on 0.0.0.0 needs an API key; pass --api-key (or set "
        "TOOLKIT_API_KEY), or keep --bind 127.0.0.1."
    )
    with pytest.raises(UsageError) as short:
        preflight.check_exposure(config, None, "127.0.0.1", "k")
    assert str(short.value).startswith("the API key must be 8 to 256 characters")
    assert short.value.exit_code == no_key.value.exit_code == 2
    preflight.check_exposure(config, None, "0.0.0.0", "a-long-enough-key")
