"""`toolkit add`: Hub repos served by a real Hub mirror (olah, offline: tests/hubmirror.py) holding
the published config.json of current models and safetensors files that are headers only (the
names, dtypes and shapes each format writes, no weights); a local folder; an Ollama tag; and
each refusal's exact message. Every written file loads through the strict catalog loader and
renders."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Run
from tests.hubmirror import commit_files, olah_mirror
from toolkit.catalog.configs import Catalog
from toolkit.paths import REPO_ROOT
from toolkit.plan.architectures import supported
from toolkit.render.compose import render_compose, render_dockerfile

FIXTURES = Path(__file__).parent / "fixtures" / "add"
Header = dict[str, tuple[str, list[int]]]


def published(repo: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{repo.replace('/', '--')}.json").read_text())
    data.pop("_source")
    return data


def _linear(prefix: str, out: int, inp: int, quant: dict[str, Any]) -> Header:
    """One linear layer's tensors as each format stores them."""
    method = quant.get("quant_method")
    if method == "awq":  # AutoAWQ's WQLinear_GEMM, packed along the output dimension
        return {
            f"{prefix}.qweight": ("I32", [inp, out // 8]),
            f"{prefix}.qzeros": ("I32", [inp // 128, out // 8]),
            f"{prefix}.scales": ("F16", [inp // 128, out]),
        }
    if method == "fp8":  # block FP8: one F32 scale per 128 x 128 block
        return {
            f"{prefix}.weight": ("F8_E4M3", [out, inp]),
            f"{prefix}.weight_scale_inv": ("F32", [-(-out // 128), -(-inp // 128)]),
        }
    return {f"{prefix}.weight": ("BF16", [out, inp])}


def headers(config: dict[str, Any]) -> Header:
    """The tensors of a Llama-layout decoder (Qwen2, Qwen3, Qwen3 MoE, Qwen2.5-VL's LM)."""
    quant = config.get("quantization_config") or {}
    hidden, inter = config["hidden_size"], config["intermediate_size"]
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = config.get("head_dim") or hidden // heads
    vocab = config["vocab_size"]
    lm = "model.language_model" if "vision_config" in config else "model"
    dense = "BF16" if quant.get("quant_method") != "awq" else "F16"
    tensors: Header = {f"{lm}.embed_tokens.weight": (dense, [vocab, hidden])}
    tensors["lm_head.weight"] = (dense, [vocab, hidden])
    tensors[f"{lm}.norm.weight"] = (dense, [hidden])
    for layer in range(config["num_hidden_layers"]):
        p = f"{lm}.layers.{layer}"
        for name, out, inp in (
            ("self_attn.q_proj", heads * head_dim, hidden),
            ("self_attn.k_proj", kv * head_dim, hidden),
            ("self_attn.v_proj", kv * head_dim, hidden),
            ("self_attn.o_proj", hidden, heads * head_dim),
        ):
            tensors.update(_linear(f"{p}.{name}", out, inp, quant))
        experts = config.get("num_experts", 0)
        if experts:
            width = config["moe_intermediate_size"]
            tensors[f"{p}.mlp.gate.weight"] = (dense, [experts, hidden])
            for e in range(experts):
                for name, out, inp in (
                    ("gate_proj", width, hidden),
                    ("up_proj", width, hidden),
                    ("down_proj", hidden, width),
                ):
                    tensors.update(_linear(f"{p}.mlp.experts.{e}.{name}", out, inp, quant))
        else:
            for name, out, inp in (
                ("mlp.gate_proj", inter, hidden),
                ("mlp.up_proj", inter, hidden),
                ("mlp.down_proj", hidden, inter),
            ):
                tensors.update(_linear(f"{p}.{name}", out, inp, quant))
        tensors[f"{p}.input_layernorm.weight"] = (dense, [hidden])
        tensors[f"{p}.post_attention_layernorm.weight"] = (dense, [hidden])
    if "vision_config" in config:
        vision = config["vision_config"]
        width = vision["hidden_size"]
        tensors["model.visual.patch_embed.proj.weight"] = ("BF16", [width, 3, 2, 14, 14])
        for block in range(vision["depth"]):
            b = f"model.visual.blocks.{block}"
            tensors[f"{b}.attn.qkv.weight"] = ("BF16", [3 * width, width])
            tensors[f"{b}.attn.proj.weight"] = ("BF16", [width, width])
            tensors[f"{b}.mlp.gate_proj.weight"] = ("BF16", [vision["intermediate_size"], width])
    return tensors


SIZES = {"BF16": 2, "F16": 2, "F32": 4, "I32": 4, "F8_E4M3": 1}


def safetensors_header_only(tensors: Header) -> bytes:
    """A safetensors file's header (the data it declares is left out: no weights)."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = SIZES[dtype]
        for dim in shape:
            size *= dim
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(raw)) + raw


REPOS = {
    "Qwen/Qwen2.5-7B-Instruct": "qwen2.5-7b-instruct",
    "Qwen/Qwen3-30B-A3B": "qwen3-30b-a3b",
    "Qwen/Qwen2.5-VL-7B-Instruct": "qwen2.5-vl-7b-instruct",
    "Qwen/Qwen3-8B-FP8": "qwen3-8b-fp8",
    "Qwen/Qwen2.5-7B-Instruct-AWQ": "qwen2.5-7b-instruct-awq",
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("hub")
    with olah_mirror(root) as (mirrors, proxy):
        for repo in REPOS:
            config = published(repo)
            files = {
                "config.json": json.dumps(config, indent=2).encode(),
                "model.safetensors": safetensors_header_only(headers(config)),
            }
            commit_files(mirrors / "models" / repo, files, lfs={"model.safetensors"})
        yield proxy.url


def toolkit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The CLI as a process: huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE at import."""
    return subprocess.run(
        [sys.executable, "-m", "toolkit", *args],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def hub_env(tmp_path: Path, endpoint: str) -> dict[str, str]:
    return {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "0"}


def loaded(directory: Path, name: str) -> str:
    """The config as the strict loader reads it, rendered: its compose file."""
    catalog = Catalog.load(directory)
    assert not catalog.errors, catalog.errors
    config = catalog[name]
    render_dockerfile(catalog, config)
    return render_compose(catalog, config)


@pytest.mark.parametrize("repo", REPOS)
def test_a_hub_repo_is_added_loaded_and_rendered(tmp_path: Path, hub: str, repo: str) -> None:
    added = toolkit("add", repo, "--catalog", str(tmp_path / "cat"), env=hub_env(tmp_path, hub))
    assert added.returncode == 0, added.stderr
    name = REPOS[repo]
    assert added.stdout.splitlines()[0] == f"wrote {tmp_path / 'cat' / name}.yaml"
    assert "FITS" in added.stdout.splitlines()
    at = f"toolkit --catalog {tmp_path / 'cat'}"
    assert added.stdout.splitlines()[-1] == (
        f"next: {at} build {name} && {at} check {name} && {at} start {name}"
    ), "vLLM's start-time checks come before the start"
    compose = loaded(tmp_path / "cat", name)
    assert repo in compose
    config = Catalog.load(tmp_path / "cat")[name]
    assert config.info is not None and config.source.hf == repo
    assert config.gpus == 1 and "tensor-parallel-size" not in config.engine_args


def test_the_facts_come_from_the_checkpoint(tmp_path: Path, hub: str) -> None:
    env = hub_env(tmp_path, hub)
    catalog = tmp_path / "cat"
    for repo in REPOS:
        assert toolkit("add", repo, "--catalog", str(catalog), env=env).returncode == 0
    configs = Catalog.load(catalog)
    moe = configs["qwen3-30b-a3b"]
    assert moe.info is not None
    assert round(moe.info.params_b, 1) == 30.5  # the model card: 30.5B, every expert resident
    assert (moe.info.heads, moe.info.head_dim, moe.info.hidden) == (32, 128, 2048)  # not 2048/128
    assert moe.engine_args["reasoning-parser"] == "qwen3"
    text = (catalog / "qwen3-30b-a3b.yaml").read_text()
    assert "every one of 128 experts is resident (8 active per token)" in text
    twin = catalog / "twins" / "Qwen--Qwen3-30B-A3B.json"
    assert configs.twin(moe) == twin
    assert set(yaml.safe_load(text)["info"]) == {"params_b", "weights"}, "the twin says the rest"
    assert moe.info.layers == json.loads(twin.read_text())["num_hidden_layers"]
    assert f"gives the plan {moe.info.layers} layers, 4 KV heads of 128" in text
    fp8 = configs["qwen3-8b-fp8"].info
    assert fp8 is not None and fp8.weights == "fp8"
    assert "quantization_config: fp8 block 128x128" in (catalog / "qwen3-8b-fp8.yaml").read_text()
    awq = configs["qwen2.5-7b-instruct-awq"].info
    assert awq is not None and awq.weights == "int4" and round(awq.params_b, 1) == 7.6
    awq_text = (catalog / "qwen2.5-7b-instruct-awq.yaml").read_text()
    assert set(yaml.safe_load(awq_text)["info"]) == {"params_b", "weights", "unquantized_b"}
    assert configs["qwen2.5-vl-7b-instruct"].vision
    dense = configs["qwen2.5-7b-instruct"]
    assert dense.engine_args == {
        "max-model-len": 32768,
        "enable-auto-tool-choice": True,
        "tool-call-parser": "hermes",
    }


def test_a_model_that_needs_more_gpus_gets_them_and_the_parallel_size(
    tmp_path: Path, hub: str
) -> None:
    added = toolkit(
        "add",
        "Qwen/Qwen3-30B-A3B",
        "--gpu-memory",
        "40GiB",
        "--catalog",
        str(tmp_path),
        env=hub_env(tmp_path, hub),
    )
    assert added.returncode == 0, added.stderr
    config = Catalog.load(tmp_path)["qwen3-30b-a3b_2"]
    assert config.gpus == 2 and config.engine_args["tensor-parallel-size"] == 2


def test_a_context_that_does_not_fit_is_capped_and_said(tmp_path: Path, hub: str) -> None:
    added = toolkit(
        "add",
        "Qwen/Qwen2.5-VL-7B-Instruct",
        "--gpu-count",
        "1",
        "--gpu-memory",
        "24GiB",
        "--catalog",
        str(tmp_path),
        env=hub_env(tmp_path, hub),
    )
    assert added.returncode == 0, added.stderr
    config = Catalog.load(tmp_path)["qwen2.5-vl-7b-instruct"]
    capped = config.engine_args["max-model-len"]
    assert isinstance(capped, int) and capped < 128000
    assert added.stdout.splitlines()[1] == (
        f"note: context capped at {capped} tokens (the model takes 128000): the KV cache left "
        "on 1 GPU(s) of 24.0 GiB holds no more; add GPUs with --gpu-count for more."
    )


def test_an_existing_file_is_kept_without_force(tmp_path: Path, hub: str) -> None:
    env = hub_env(tmp_path, hub)
    args = ("add", "Qwen/Qwen2.5-7B-Instruct", "--catalog", str(tmp_path))
    assert toolkit(*args, env=env).returncode == 0
    again = toolkit(*args, env=env)
    assert again.returncode == 2
    assert again.stderr == (
        f"error: {tmp_path}/qwen2.5-7b-instruct.yaml exists; pass --force to replace it, "
        "or choose --name.\n"
    )
    assert toolkit(*args, "--force", env=env).returncode == 0


def test_a_repo_the_hub_does_not_hold_is_one_sentence(tmp_path: Path, hub: str) -> None:
    missing = toolkit("add", "Qwen/Nope", "--catalog", str(tmp_path), env=hub_env(tmp_path, hub))
    assert missing.returncode == 2
    assert missing.stderr == (
        f"error: Qwen/Nope is not a model on {hub} that this client may read; check the name "
        "(org/name[@revision]), or set HF_TOKEN for a private or gated repo.\n"
    )


def test_offline_a_missing_repo_fails_at_once(tmp_path: Path) -> None:
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    offline = toolkit("add", "Qwen/Qwen2.5-7B-Instruct", "--catalog", str(tmp_path), env=env)
    assert offline.returncode == 2
    assert offline.stderr == (
        "error: Qwen/Qwen2.5-7B-Instruct is not in the local Hugging Face cache and "
        "HF_HUB_OFFLINE=1 forbids the Hub; run without HF_HUB_OFFLINE, or add a local model "
        "folder.\n"
    )
    # No network: one short request, no retries.
    dead = toolkit(
        "add",
        "Qwen/Qwen2.5-7B-Instruct",
        "--catalog",
        str(tmp_path),
        env={"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": "http://127.0.0.1:9"},
    )
    assert dead.returncode == 1
    assert dead.stderr == (
        "error: cannot reach the Hugging Face Hub at http://127.0.0.1:9 (ConnectError); check "
        "the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to read the local cache.\n"
    )


def test_a_local_folder_with_only_config_json(tmp_path: Path, run: Run) -> None:
    folder = tmp_path / "Qwen2.5-7B-Instruct"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(published("Qwen/Qwen2.5-7B-Instruct")))
    result = run("add", str(folder), "--catalog", str(tmp_path / "cat"))
    assert result.exit_code == 0, result.output
    loaded(tmp_path / "cat", "qwen2.5-7b-instruct")
    config = Catalog.load(tmp_path / "cat")["qwen2.5-7b-instruct"]
    assert config.source.local == str(folder) and config.info is not None
    assert round(config.info.params_b, 2) == 7.62  # estimated from the shapes; the card: 7.61B
    assert (
        "parameters from config.json's shapes (estimated)"
        in (tmp_path / "cat" / "qwen2.5-7b-instruct.yaml").read_text()
    )


def test_an_ollama_tag(tmp_path: Path, run: Run) -> None:
    result = run("add", "ollama:llama3.2:3b", "--catalog", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == (
        "note: an Ollama tag carries no checkpoint facts here, so nothing was planned; add an "
        "info: block to plan it."
    )
    loaded(tmp_path, "llama3.2-3b")
    config = Catalog.load(tmp_path)["llama3.2-3b"]
    assert (config.backend, config.protocol, config.source.ollama) == (
        "ollama",
        "ollama-text",
        "llama3.2:3b",
    )


def test_refusals(tmp_path: Path, run: Run) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    config = {**published("Qwen/Qwen2.5-7B-Instruct"), "architectures": ["NoSuchForCausalLM"]}
    (folder / "config.json").write_text(json.dumps(config))
    cases = {
        ("add", "ollama:llama3.2:3b"): (
            "toolkit add writes into your own catalog; give --catalog DIR or set TOOLKIT_CATALOG."
        ),
        ("add", "not a source", "--catalog", str(tmp_path)): (
            "'not a source' is neither a model folder, a Hugging Face repo "
            "(org/name[@revision]) nor an Ollama tag (ollama:NAME:TAG); give one of those."
        ),
        ("add", "ollama:Bad Tag", "--catalog", str(tmp_path)): (
            "'ollama:Bad Tag' is not an Ollama tag; write it as ollama:NAME:TAG, e.g. "
            "ollama:llama3.2:3b."
        ),
        ("add", str(folder), "--catalog", str(tmp_path)): (
            f"vLLM {supported().vllm} cannot serve NoSuchForCausalLM "
            "(configs/vllm-facts.json); add a checkpoint of an architecture it lists, "
            "or add the folder with --backend transformers."
        ),
        ("add", "ollama:x:1", "--name", "Bad", "--catalog", str(tmp_path)): (
            "--name 'Bad' is not a config name; use lower-case letters, digits, '.', '_' and "
            "'-', starting with a letter or digit."
        ),
        ("add", "ollama:x:1", "--name", "llama3-8b", "--catalog", str(tmp_path)): (
            "'llama3-8b' is a built-in config that this file would replace; pass --force to "
            "replace it, or choose --name."
        ),
        ("add", "ollama:x:1", "--backend", "nope", "--catalog", str(tmp_path)): (
            "unknown backend 'nope'; choose one of vllm, ollama, diffusers, transformers."
        ),
    }
    for args, message in cases.items():
        result = run(*args, env={"TOOLKIT_CATALOG": ""})
        assert (result.exit_code, result.stderr) == (2, f"error: {message}\n"), args


def test_the_architecture_list_is_the_pinned_vllms() -> None:
    backends = (REPO_ROOT / "configs" / "_backends.yaml").read_text()
    assert f"vllm/vllm-openai:v{supported().vllm}" in backends
    assert supported().serves("Qwen3MoeForCausalLM")
    assert supported().serves("Qwen2_5_VLForConditionalGeneration")


def test_a_revision_is_kept_and_no_weights_are_downloaded(tmp_path: Path, hub: str) -> None:
    env = hub_env(tmp_path, hub)
    added = toolkit("add", "Qwen/Qwen3-8B-FP8@main", "--catalog", str(tmp_path / "c"), env=env)
    assert added.returncode == 0, added.stderr
    config = Catalog.load(tmp_path / "c")["qwen3-8b-fp8"]
    assert (config.source.hf, config.source.revision) == ("Qwen/Qwen3-8B-FP8", "main")
    cached = {p.name for p in (tmp_path / "hf").rglob("*") if p.is_file() or p.is_symlink()}
    assert "config.json" in cached and "model.safetensors" not in cached, "headers by Range only"
    twin = json.loads((tmp_path / "c" / "twins" / "Qwen--Qwen3-8B-FP8.json").read_text())
    assert twin == {
        "_source": "Qwen/Qwen3-8B-FP8@main:config.json",
        **published(repo := "Qwen/Qwen3-8B-FP8"),
    }
    assert repo in (tmp_path / "c" / "qwen3-8b-fp8.yaml").read_text()


def test_what_the_plan_refuses_is_one_sentence(tmp_path: Path, hub: str) -> None:
    env = hub_env(tmp_path, hub)
    too_long = toolkit(
        "add",
        "Qwen/Qwen2.5-7B-Instruct",
        "--context",
        "65536",
        "--catalog",
        str(tmp_path),
        env=env,
    )
    assert (too_long.returncode, too_long.stderr) == (
        2,
        "error: --context 65536 is more than the model's 32768 tokens; ask for at most 32768.\n",
    )
    three = toolkit(
        "add",
        "Qwen/Qwen2.5-7B-Instruct",
        "--gpu-count",
        "3",
        "--catalog",
        str(tmp_path),
        env=env,
    )
    assert (three.returncode, three.stderr) == (
        2,
        "error: --gpu-count 3: vLLM refuses it, 3 GPUs do not divide the model's 28 attention "
        "heads.\n",
    )
    small = toolkit(
        "add",
        "Qwen/Qwen3-30B-A3B",
        "--gpu-count",
        "1",
        "--gpu-memory",
        "24GiB",
        "--catalog",
        str(tmp_path),
        env=env,
    )
    assert small.returncode == 1
    assert small.stderr.startswith("error: Qwen3-30B-A3B does not fit 1 GPU(s) of 24.0 GiB: ")
    assert small.stderr.endswith("or a quantized variant.\n")
    assert not list(tmp_path.glob("*.yaml")), "nothing written"


def test_deepseek_r1_distills_get_vllms_reasoning_parser(tmp_path: Path, run: Run) -> None:
    folder = tmp_path / "DeepSeek-R1-Distill-Qwen-7B"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(published("Qwen/Qwen2.5-7B-Instruct")))
    assert run("add", str(folder), "--catalog", str(tmp_path / "c")).exit_code == 0
    args = Catalog.load(tmp_path / "c")["deepseek-r1-distill-qwen-7b"].engine_args
    assert args == {"max-model-len": 32768, "reasoning-parser": "deepseek_r1"}


def test_checkpoint_facts_from_config_json() -> None:
    from toolkit.plan.facts import checkpoint, count

    base = published("Qwen/Qwen2.5-7B-Instruct")
    stretched = {**base, "rope_scaling": {"rope_type": "linear", "factor": 4.0}}
    assert checkpoint(stretched, {}).info.max_position == 131072  # as vLLM derives it
    # Qwen2.5's model card: add YaRN with factor 4 on its 32768 tokens for 131072.
    scaling = {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}
    facts = checkpoint({**base, "rope_scaling": scaling}, {})
    assert (facts.info.max_position, facts.rope) == (131072, "yarn")
    # DeepSeek-V3: YaRN's factor stretches the original 4096, not max_position_embeddings.
    deepseek = {**scaling, "factor": 40, "original_max_position_embeddings": 4096}
    longer = {**base, "max_position_embeddings": 163840, "rope_scaling": deepseek}
    assert checkpoint(longer, {}).info.max_position == 163840
    llama3 = {"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 8192}
    assert checkpoint({**base, "rope_scaling": llama3}, {}).info.max_position == 32768
    gemma3 = {**base, "model_type": "gemma3_text", "rope_scaling": {**scaling}}
    assert checkpoint(gemma3, {}).info.max_position == 32768, "Gemma 3 is scaled already"
    assert checkpoint({**base, "tie_word_embeddings": True}, {}).tied_embeddings
    wrapped = {"architectures": ["X"], "text_config": base, "vision_config": {"depth": 1}}
    assert checkpoint(wrapped, {}).info.layers == 28 and checkpoint(wrapped, {}).vision
    # MXFP4 (gpt-oss): each byte of a `_blocks` tensor holds two 4-bit values.
    tensors = {
        "m.experts.gate_up_proj_blocks": ("U8", [4, 16, 2, 16]),
        "m.experts.gate_up_proj_scales": ("U8", [4, 16, 2]),
        "m.embed.weight": ("BF16", [10, 8]),
    }
    assert count(tensors.items(), 0) == (4 * 16 * 2 * 16 * 2 + 80, 80)


def test_another_backend_for_a_local_folder(tmp_path: Path, run: Run) -> None:
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(published("Qwen/Qwen2.5-7B-Instruct")))
    result = run("add", str(folder), "--backend", "transformers", "--catalog", str(tmp_path / "c"))
    assert result.exit_code == 0, result.output
    assert (
        result.stdout.splitlines()[1]
        == "tiny (transformers) on 1 GPU(s) of 79.22 GiB, utilization 1.00"
    )
    loaded(tmp_path / "c", "tiny")
    text = (tmp_path / "c" / "tiny.yaml").read_text()
    assert "gpus: 1\n" in text and "engine_args" not in text, "nothing vLLM's"
    at = f"toolkit --catalog {tmp_path / 'c'}"
    assert result.stdout.splitlines()[-1] == f"next: {at} build tiny && {at} start tiny", (
        "transformers serve has no start-time check to offer"
    )


def test_plan_model_with_no_network_fails_at_once(tmp_path: Path) -> None:
    import time

    started = time.monotonic()
    dead = toolkit(
        "plan",
        "llama3-8b",
        "--model",
        "meta-llama/Meta-Llama-3-8B-Instruct",
        env={"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": "http://127.0.0.1:9"},
    )
    assert time.monotonic() - started < 10, "no 24 s of retries"
    assert (dead.returncode, dead.stderr) == (
        1,
        "error: cannot reach the Hugging Face Hub at http://127.0.0.1:9 (ConnectError); check "
        "the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to read the local cache.\n",
    )
