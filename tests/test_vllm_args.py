"""Every rendered vLLM command line is accepted by the pinned vLLM's own argument parser.

The parser runs in .venv-vllm (scripts/make-vllm-parser-venv.sh, `make vllm-parser`): vLLM itself,
installed without its GPU dependencies. In CI a missing parser venv fails this test.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import builtin_text
from toolkit.catalog.configs import Catalog
from toolkit.paths import REPO_ROOT
from toolkit.service.server import server_command

FACTS = REPO_ROOT / "configs" / "vllm-facts.json"
PARSER_PYTHON = Path(os.environ.get("VLLM_PARSER_VENV", REPO_ROOT / ".venv-vllm")) / "bin/python"
PARSE = """
import json, sys
from vllm.entrypoints.common.cli_args import make_arg_parser
from vllm.utils.argparse_utils import FlexibleArgumentParser
results = {}
for name, argv in json.loads(sys.stdin.read()).items():
    parser = make_arg_parser(FlexibleArgumentParser())
    try:
        args = parser.parse_args(argv)
        results[name] = {"tp": args.tensor_parallel_size, "served": args.served_model_name,
                         "model": args.model}
    except SystemExit:
        results[name] = {"error": "refused"}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def parser_python() -> Path:
    if not PARSER_PYTHON.exists():
        message = (
            f"vLLM's parser venv {PARSER_PYTHON.parent.parent} is missing; run make vllm-parser"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return PARSER_PYTHON


def _parse(python: Path, commands: dict[str, list[str]]) -> dict[str, dict[str, object]]:
    result = subprocess.run(
        [str(python), "-c", PARSE],
        input=json.dumps(commands),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "VLLM_TARGET_DEVICE": "cpu"},
    )
    parsed: dict[str, dict[str, object]] = json.loads(result.stdout.splitlines()[-1])
    return parsed


@pytest.fixture(scope="module")
def parsed(parser_python: Path) -> dict[str, dict[str, object]]:
    catalog = Catalog.load()
    commands = {}
    for name, config in catalog.items():
        if config.backend == "vllm":
            command = server_command(config, catalog.backend(config))
            commands[name] = ["--model", *command]
    return _parse(parser_python, commands)


VLLM_CONFIGS = [(n, c) for n, c in Catalog.load().items() if c.backend == "vllm"]


@pytest.mark.parametrize(("name", "config"), VLLM_CONFIGS, ids=[n for n, _ in VLLM_CONFIGS])
def test_vllm_accepts_the_rendered_command(parsed, name: str, config) -> None:
    result = parsed[name]
    assert "error" not in result, f"vLLM refuses {name}'s command line"
    assert result["served"] == [config.model]
    assert result["tp"] == max(config.gpus, 1)
    assert result["model"] == config.source.reference


def test_vllm_refuses_an_unknown_flag_and_a_bad_value(parser_python: Path) -> None:
    """The parser is strict, so the test above can fail: a misspelt flag, a value of the wrong
    type. (vLLM takes most string values, such as --tokenizer-mode, as they come and checks them
    only when it loads the model; no parser can catch those without the weights.)"""
    commands = {
        "flag": ["--model", "m", "--tensor-paralel-size", "2"],
        "value": ["--model", "m", "--max-model-len", "lots"],
    }
    assert _parse(parser_python, commands) == {
        "flag": {"error": "refused"},
        "value": {"error": "refused"},
    }


def test_the_facts_file_is_the_pinned_vllms_own(parser_python: Path, tmp_path: Path) -> None:
    """configs/vllm-facts.json, the option list the catalog checks engine_args against (and the
    architectures vLLM serves), is what scripts/make-vllm-facts.py reads from this vLLM now."""
    fresh = tmp_path / "vllm-facts.json"
    subprocess.run(
        [str(parser_python), str(REPO_ROOT / "scripts" / "make-vllm-facts.py"), str(fresh)],
        capture_output=True,
        check=True,
        env={**os.environ, "VLLM_TARGET_DEVICE": "cpu"},
    )
    assert fresh.read_text() == FACTS.read_text(), (
        "configs/vllm-facts.json is stale; run make vllm-facts"
    )


def test_the_facts_file_is_of_the_pinned_version() -> None:
    facts = json.loads(FACTS.read_text())
    pinned = Catalog.load().backends["vllm"].version  # the image's tag, v0.33.0
    assert (facts["server"], facts["version"]) == ("vLLM", pinned.removeprefix("v"))
    assert {"max-model-len", "enforce-eager", "no-enforce-eager"} <= set(facts["options"])
    assert {"enforce-eager", "no-enforce-eager"} <= set(facts["no_value_options"])
    assert "LlamaForCausalLM" in facts["architectures"]["text_generation"]


def test_false_turns_a_default_on_flag_off(parser_python: Path, tmp_path: Path) -> None:
    """`false` is the flag's negation (vLLM's --disable-prefix-caching, --no-trust-remote-code),
    not a dropped flag that leaves the default (prefix caching on) in place."""
    (tmp_path / "mine.yaml").write_text(
        "model: M\nprotocol: openai-text\nbackend: vllm\ngpus: 1\nsource: {hf: org/m}\n"
        "engine_args: {enable-prefix-caching: false, trust-remote-code: false}\n"
    )
    catalog = Catalog.load(tmp_path)
    config = catalog["mine"]
    command = server_command(config, catalog.backend(config))
    assert command[-2:] == ["--disable-prefix-caching", "--no-trust-remote-code"]
    code = (
        "import sys\n"
        "from vllm.entrypoints.common.cli_args import make_arg_parser\n"
        "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
        "args = make_arg_parser(FlexibleArgumentParser()).parse_args(sys.argv[1:])\n"
        "print(args.enable_prefix_caching, args.trust_remote_code)\n"
    )
    result = subprocess.run(
        [str(parser_python), "-c", code, "--model", *command],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "VLLM_TARGET_DEVICE": "cpu"},
    )
    assert result.stdout.splitlines()[-1] == "False False"


def test_vllm_reads_the_tensor_parallel_size_derived_from_the_gpu_count(
    parser_python: Path, user_catalog
) -> None:
    text = builtin_text("qwen2-72b_4").replace("  tensor-parallel-size: 4\n", "")
    catalog = Catalog.load(user_catalog("derived.yaml", text))
    command = server_command(catalog["derived"], catalog.backend(catalog["derived"]))
    assert _parse(parser_python, {"derived": ["--model", *command]})["derived"]["tp"] == 4
