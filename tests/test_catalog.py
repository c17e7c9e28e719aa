"""The catalog holds the seed table exactly, and refuses bad input with one clear sentence."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import Run, builtin_text, untwinned
from toolkit.catalog.configs import Catalog, CatalogError, engine_options
from toolkit.paths import REPO_ROOT
from toolkit.service.server import server_command

# The seed table of catalog-facts.md: the acceptance criterion, not a second config list.
SEED = """
llama3-8b Llama3-8B openai-text
llama3-70b_1 Llama3-70B openai-text
llama3-70b_4 Llama3-70B openai-text
qwen1.5-110b_1 Qwen1.5-110B openai-text
qwen1.5-110b_4 Qwen1.5-110B openai-text
yi1.5-34b Yi1.5-34B openai-text
qwen2-72b_1 Qwen2-72B openai-text
qwen2-72b_4 Qwen2-72B openai-text
falcon2-11b Falcon2-11B openai-text
openbiollm-llama3-70b_1 OpenBioLLM-Llama3-70B openai-text
openbiollm-llama3-70b_4 OpenBioLLM-Llama3-70B openai-text
minicpm-v2.5 MiniCPM-Llama3-V2.5 ollama-text
codestral-22b-v0.1 Codestral-22B-v0.1 openai-text
gemma2-27b_4 Gemma-2-27B openai-text
llama3.1-405b_8 Llama-3.1-405B openai-text
mistral-123b_4 Mistral-123B openai-text
flux.1-dev FLUX.1-dev openai-image
nemotron-70b_2 Llama-3.1-Nemotron-70B openai-text
nvlm-70b_4 NVLM-D-72B openai-text
"""
SEED_ROWS = [tuple(line.split()) for line in SEED.strip().splitlines()]


def test_list_json_holds_every_seed_config_exactly(run: Run) -> None:
    result = run("list", "--json")
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    for name, model, protocol in SEED_ROWS:
        assert (rows[name]["model"], rows[name]["protocol"]) == (model, protocol)
        assert set(rows[name]) >= {"name", "model", "protocol", "backend", "gpus"}
    extra = set(rows) - {name for name, _, _ in SEED_ROWS}
    assert extra == {"demo-image", "demo-text", "demo-vllm", "llama3.1-405b_16", "minicpm-v2.6"}, (
        "only the CPU demos and the two-host 405B stand beside the seed"
    )


@pytest.mark.parametrize(("name", "model", "protocol"), SEED_ROWS)
def test_gpu_count_follows_the_name_suffix(
    catalog: Catalog, name: str, model: str, protocol: str
) -> None:
    suffix = name.rsplit("_", 1)[1] if "_" in name else "1"
    assert catalog[name].gpus == int(suffix)


def test_list_prints_a_table(run: Run) -> None:
    lines = run("list").stdout.splitlines()
    assert lines[0].split() == ["NAME", "MODEL", "PROTOCOL", "BACKEND", "GPUS", "BUILT", "RUNNING"]
    assert any(line.split()[:2] == ["llama3-70b_4", "Llama3-70B"] for line in lines)


def test_show_resolves_defaults(run: Run) -> None:
    result = run("show", "llama3-8b", "--json")
    data = json.loads(result.stdout)
    assert data["port"] == 1042
    assert data["backend_base_image"] == "vllm/vllm-openai:v0.33.0"


def test_near_miss_suggests_the_closest_name(run: Run) -> None:
    result = run("show", "llama3-70b-4")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: unknown config 'llama3-70b-4'; did you mean llama3-70b_4"
    )
    assert "Run 'toolkit list' to see every config." in result.stderr


BAD = {
    "malformed yaml": (
        "model: [unclosed\n",
        "bad.yaml: not valid YAML at line 2, column 1",
    ),
    "unknown key": (
        builtin_text("llama3-8b") + "gpu: 2\n",
        "bad.yaml: unknown key 'gpu'; allowed keys: model, protocol, backend, gpus,",
    ),
    "unknown nested key": (
        builtin_text("llama3-8b").replace("revision: main", "revison: main"),
        "bad.yaml: unknown key 'source.revison'; allowed keys: hf, revision, modelscope,",
    ),
    "wrong type": (
        builtin_text("llama3-8b").replace("gpus: 1", "gpus: four"),
        "bad.yaml: field 'gpus': Input should be a valid integer, got 'four'.",
    ),
    "a boolean for an integer": (
        builtin_text("llama3-8b").replace("gpus: 1", "gpus: true"),
        "bad.yaml: field 'gpus': Input should be a valid integer, got True.",
    ),
    "a string for a model fact": (
        builtin_text("demo-vllm").replace("layers: 2", 'layers: "2"'),
        "bad.yaml: field 'info.layers': Input should be a valid integer, got '2'.",
    ),
    "a string for a flag": (
        builtin_text("llama3-8b").replace("gated: true", 'gated: "no"'),
        "bad.yaml: field 'gated': Input should be a valid boolean, got 'no'.",
    ),
    "an engine argument vLLM does not have": (
        builtin_text("llama3-8b").replace("max-model-len:", "max-model-lenn:"),
        "bad.yaml: field 'engine_args.max-model-lenn': vLLM 0.33.0 has no option "
        "--max-model-lenn; did you mean max-model-len or max-log-len?\n",
    ),
    "an engine argument like none of vLLM's": (
        builtin_text("llama3-8b").replace("len: 8192\n", "len: 8192\n  zz-top: 1\n"),
        "bad.yaml: field 'engine_args.zz-top': vLLM 0.33.0 has no option --zz-top; remove it.",
    ),
    "a value for a flag that takes none": (
        builtin_text("llama3-8b").replace("len: 8192\n", "len: 8192\n  enforce-eager: 3\n"),
        "bad.yaml: field 'engine_args.enforce-eager': --enforce-eager takes no value in "
        "vLLM 0.33.0; write true to pass it, got 3.",
    ),
    "a key given twice": (
        builtin_text("llama3-8b") + "gpus: 2\n",
        "bad.yaml: key 'gpus' at line 15 repeats the one at line 5; keep one of the two.",
    ),
    "a key given twice in a nested mapping": (
        builtin_text("llama3-8b").replace("  params_b: 8.03\n", "  params_b: 8.03\n" * 2),
        "bad.yaml: key 'params_b' at line 12 repeats the one at line 11; keep one of the two.",
    ),
    "a YAML alias": (
        builtin_text("llama3-8b").replace("model: Llama3-8B", "model: &name Llama3-8B")
        + "env: {SERVED: *name}\n",
        "bad.yaml: a YAML alias repeats the value at line 2; catalog files take no aliases, "
        "so write each value out.",
    ),
    "a YAML merge key": (
        builtin_text("llama3-8b").replace("source:\n", "source:\n  <<: {local: /x}\n"),
        "bad.yaml: line 8 has a YAML merge key (<<); catalog files take no merge keys or "
        "aliases, so write each value out.",
    ),
    "gpus disagree with tensor parallel": (
        builtin_text("llama3-70b_4").replace("gpus: 4", "gpus: 2"),
        "bad.yaml: field 'engine_args.tensor-parallel-size': 4 disagrees with gpus: 2; "
        "set it to the GPU count.",
    ),
    "protocol the backend cannot serve": (
        builtin_text("llama3-8b").replace("protocol: openai-text", "protocol: ollama-text"),
        "bad.yaml: field 'protocol': backend 'vllm' cannot serve 'ollama-text'; "
        "allowed: openai-text.",
    ),
    "unknown protocol": (
        builtin_text("llama3-8b").replace("protocol: openai-text", "protocol: grpc"),
        "bad.yaml: field 'protocol': Input should be 'openai-text', 'ollama-text' or "
        "'openai-image', got 'grpc'.",
    ),
    "two sources": (
        builtin_text("llama3-8b").replace("  revision: main", "  local: /models/x"),
        "bad.yaml: field 'source': give exactly one of hf, modelscope, ollama "
        "or local (got hf, local).",
    ),
    "hostile environment name": (
        builtin_text("flux.1-dev").replace("TOOLKIT_STEPS:", '"X: 1\\n    evil":'),
        "bad.yaml: field 'env': key 'X: 1\\n    evil' is not allowed (String should match "
        "pattern '^[A-Za-z_][A-Za-z0-9_]*$').",
    ),
    "vLLM facts the plan cannot do without": (
        untwinned("me/mine").replace("  kv_heads: 8\n", ""),
        "bad.yaml: field 'info': vLLM's plan needs layers, kv_heads and head_dim; keep the "
        "checkpoint's config.json beside the file as twins/<owner>--<name>.json, or add them "
        "from it.",
    ),
    "neither parameters nor the weights' size": (
        builtin_text("minicpm-v2.6")
        .replace("  params_b: 8.1\n", "")
        .replace("  weights_gib: 5.5", "  # weights_gib: 5.5"),
        "bad.yaml: field 'info.params_b': required unless weights_gib gives the weights' size; "
        "add either.",
    ),
    "missing field": (
        builtin_text("llama3-8b").replace("model: Llama3-8B\n", ""),
        "bad.yaml: field 'model' is required; add it.",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_is_refused_naming_file_and_field(run: Run, user_catalog, case: str) -> None:
    text, message = BAD[case]
    directory = user_catalog("bad.yaml", text)
    result = run("--catalog", str(directory), "list")
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1, "one sentence, one line"
    assert "llama3-70b_4" in result.stdout, "the configs that load are still listed"


def test_an_alias_bomb_fails_at_once(run: Run, user_catalog) -> None:
    """Nine levels of nine aliases ("billion laughs") would expand to 9**9 strings."""
    levels = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for n in range(1, 10):
        levels.append(f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]")
    directory = user_catalog("bomb.yaml", "\n".join(levels) + "\ndescription: *a9\n")
    started = time.monotonic()
    result = run("--catalog", str(directory), "show", "bomb")
    assert time.monotonic() - started < 5
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {directory / 'bomb.yaml'}: a YAML alias repeats the value at line 10; catalog "
        "files take no aliases, so write each value out.\n"
    )


def test_user_files_that_are_not_configs_are_named(run: Run, user_catalog) -> None:
    """.yml loads like .yaml; an upper-case suffix or a leading '_' is said, not skipped."""
    user_catalog("_private.yaml", builtin_text("llama3-8b"))
    user_catalog("shout.YAML", builtin_text("llama3-8b"))
    user_catalog("notes.txt", "not a config\n")
    directory = user_catalog("short.yml", builtin_text("llama3-8b"))
    catalog = Catalog.load(directory)
    assert "short" in catalog and "shout" not in catalog
    assert {name: str(exc) for name, exc in catalog.errors.items()} == {
        "_private.yaml": f"{directory / '_private.yaml'}: not loaded, since a file name "
        "starting with '_' is not a config; rename the file to load it.",
        "shout.YAML": f"{directory / 'shout.YAML'}: not loaded, since only the lower-case "
        "suffixes .yaml and .yml mark a config; rename it to shout.yaml to load it.",
    }
    result = run("--catalog", str(directory), "list")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == "error: 2 config files have errors; fix each:"
    assert "short " in result.stdout and "llama3-70b_4" in result.stdout
    shown = run("--catalog", str(directory), "show", "short", "--json")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["name"] == "short"


def test_a_missing_option_list_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)
    with pytest.raises(CatalogError) as raised:
        engine_options("no-such-facts.json")
    assert str(raised.value) == (
        "configs/no-such-facts.json: missing or not JSON; restore it from the repository."
    )


def test_duplicate_config_name_is_refused(run: Run, user_catalog) -> None:
    user_catalog("twin.yml", builtin_text("llama3-8b"))
    directory = user_catalog("twin.yaml", builtin_text("llama3-8b"))
    result = run("--catalog", str(directory), "list")
    assert result.exit_code == 2
    assert "twin.yml: duplicate config name 'twin'" in result.stderr
    assert "keep one of the two files." in result.stderr


def test_missing_user_catalog_is_refused(run: Run, tmp_path) -> None:
    result = run("--catalog", str(tmp_path / "nope"), "list")
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: catalog directory {tmp_path / 'nope'} does not exist; point --catalog / "
        "TOOLKIT_CATALOG at a directory of config files.\n",
    )
    (tmp_path / "file.yaml").write_text("")
    result = run("--catalog", str(tmp_path / "file.yaml"), "list")
    assert result.stderr == (
        f"error: catalog directory {tmp_path / 'file.yaml'} is a file, not a directory; point "
        "--catalog / TOOLKIT_CATALOG at a directory of config files.\n"
    )


def test_user_catalog_overlays_and_adds(run: Run, user_catalog) -> None:
    user_catalog(
        "llama3-8b.yaml", builtin_text("llama3-8b").replace("port: 1042", "") + "port: 1099\n"
    )
    directory = user_catalog("my-model.yaml", builtin_text("llama3-8b"))
    rows = {
        r["name"]: r for r in json.loads(run("--catalog", str(directory), "list", "--json").stdout)
    }
    assert "my-model" in rows
    shown = json.loads(
        run("show", "llama3-8b", "--json", env={"TOOLKIT_CATALOG": str(directory)}).stdout
    )
    assert shown["port"] == 1099


def test_every_error_of_a_file_and_of_the_catalog_comes_at_once(run: Run, user_catalog) -> None:
    text = builtin_text("llama3-8b").replace("gpus: 1", "gpus: four") + "gpu: 2\n"
    user_catalog("broken.yaml", text)
    directory = user_catalog("other.yaml", "model: [unclosed\n")
    result = run("--catalog", str(directory), "render", "--check")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "error: 2 config files have errors; fix each:"
    assert lines[1].endswith("broken.yaml: 2 problems; fix each:")
    assert "unknown key 'gpu'" in result.stderr and "got 'four'" in result.stderr
    assert "other.yaml: not valid YAML at line 2, column 1" in result.stderr


def test_a_broken_user_file_blocks_only_its_own_config(run: Run, user_catalog) -> None:
    directory = user_catalog("broken.yaml", "model: [unclosed\n")
    shown = run("--catalog", str(directory), "show", "demo-text", "--json")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["name"] == "demo-text"
    broken = run("--catalog", str(directory), "show", "broken")
    assert broken.exit_code == 2
    assert "broken.yaml: not valid YAML at line 2, column 1" in broken.stderr


def test_names_docker_cannot_tag_are_refused(run: Run, user_catalog) -> None:
    for name in ("a..b", "a-", "a_", "a._b"):
        directory = user_catalog(f"{name}.yaml", builtin_text("llama3-8b"))
        result = run("--catalog", str(directory), "show", name)
        assert result.exit_code == 2
        assert result.stderr == (
            f"error: {directory / name}.yaml: config name '{name}' cannot name a Docker image; "
            "use lower-case letters and digits, separated by one '.', one or two '_' or any "
            "number of '-'.\n"
        )
    long_name = "a" * 248
    directory = user_catalog(f"{long_name}.yaml", builtin_text("llama3-8b"))
    result = run("--catalog", str(directory), "show", long_name)
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {directory / long_name}.yaml: config name has 248 characters; shorten it to "
        "at most 247, as the image name toolkit/NAME may have at most 255.\n",
    )
    for name in ("a__b", "a--b", "a.b_c-d", "a" * 247):
        directory = user_catalog(f"{name}.yaml", builtin_text("llama3-8b"))
        assert run("--catalog", str(directory), "show", name).exit_code == 0


def test_two_names_of_one_compose_project_are_refused_naming_both(run: Run, user_catalog) -> None:
    user_catalog("qwen2.5-7b.yaml", builtin_text("llama3-8b"))
    directory = user_catalog("qwen2-5-7b.yaml", builtin_text("llama3-8b"))
    dotted, dashed = directory / "qwen2.5-7b.yaml", directory / "qwen2-5-7b.yaml"
    result = run("--catalog", str(directory), "show", "qwen2.5-7b")
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {dotted}: makes the Compose project 'toolkit-qwen2-5-7b', as {dashed} does, "
        "so starting one would replace the other; rename one of the files.\n",
    )
    listed = run("--catalog", str(directory), "list")
    assert listed.exit_code == 2
    assert f"  {dashed}: makes the Compose project 'toolkit-qwen2-5-7b', as {dotted}" in (
        listed.stderr
    )
    assert "llama3-8b" in listed.stdout and "qwen2" not in listed.stdout.replace("qwen2-72b", "")
    assert run("--catalog", str(directory), "plan", "llama3-8b").exit_code == 0
    # A user file whose project is a built-in config's blocks both: either start replaces.
    directory = user_catalog("flux-1-dev.yaml", builtin_text("flux.1-dev"))
    builtin = run("--catalog", str(directory), "show", "flux.1-dev")
    assert builtin.exit_code == 2
    assert builtin.stderr.endswith(
        f"as {directory / 'flux-1-dev.yaml'} does, so starting one would replace the other; "
        "rename one of the files.\n"
    )


def _unreadable_catalog(directory: Path) -> dict[str, str]:
    """A directory named like a config, a Latin-1 file and a broken link; each one's message."""
    (directory / "sub.yaml").mkdir()
    (directory / "latin.yaml").write_bytes("model: caf\xe9\n".encode("latin-1"))
    (directory / "broken.yaml").symlink_to(directory / "gone.yaml")
    return {
        "sub": f"{directory / 'sub.yaml'}: a directory, not a config file; rename it or move "
        "it out of the catalog.",
        "latin": f"{directory / 'latin.yaml'}: not UTF-8 text (byte 0xe9 at offset 10); save "
        "the file as UTF-8.",
        "broken": f"{directory / 'broken.yaml'}: a symbolic link to {directory / 'gone.yaml'}, "
        "which does not exist; fix the link or remove it.",
    }


def test_an_unreadable_file_is_one_sentence_and_blocks_only_itself(
    run: Run, tmp_path: Path
) -> None:
    messages = _unreadable_catalog(tmp_path)
    for name, message in messages.items():
        result = run("--catalog", str(tmp_path), "show", name)
        assert (result.exit_code, result.stderr) == (2, f"error: {message}\n")
    planned = run("--catalog", str(tmp_path), "plan", "llama3-8b")
    assert planned.exit_code == 0 and planned.stdout.rstrip().endswith("FITS")
    listed = run("--catalog", str(tmp_path), "list")
    assert listed.exit_code == 2
    assert "llama3-8b" in listed.stdout
    assert listed.stderr.splitlines() == [
        "error: 3 config files have errors; fix each:",
        *(f"  {messages[name]}" for name in ("broken", "latin", "sub")),
    ]
    rendered = run("--catalog", str(tmp_path), "render", "--check")
    assert rendered.exit_code == 2 and rendered.stderr == listed.stderr


def test_the_tensor_parallel_size_is_derived_from_the_gpu_count(run: Run, user_catalog) -> None:
    """Absent, it is the GPU count, rendered where the config file would have put it last;
    given, it must agree (the BAD cases above)."""
    text = builtin_text("qwen2-72b_4").replace("  tensor-parallel-size: 4\n", "")
    assert "tensor-parallel-size" not in text
    catalog = Catalog.load(user_catalog("qwen-derived.yaml", text))
    config = catalog["qwen-derived"]
    command = server_command(config, catalog.backend(config))
    assert command[-4:] == ["--max-model-len", "32768", "--tensor-parallel-size", "4"]
    one = catalog["llama3-8b"]
    assert "--tensor-parallel-size" not in server_command(one, catalog.backend(one))
    plan = run("--catalog", str(user_catalog("qwen-derived.yaml", text)), "plan", "qwen-derived")
    assert plan.exit_code == 0, plan.output


def test_an_ollama_config_sized_by_its_weights_needs_no_parameter_count(
    run: Run, user_catalog
) -> None:
    text = builtin_text("minicpm-v2.6").replace("  params_b: 8.1\n", "")
    directory = user_catalog("minicpm-v2.6.yaml", text)
    shown = run("--catalog", str(directory), "show", "minicpm-v2.6", "--json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["info"]["params_b"] is None and data["download_gib"] == 5.5
    plan = run("--catalog", str(directory), "plan", "minicpm-v2.6", "--json")
    assert plan.exit_code == 0, plan.output
    assert json.loads(plan.stdout)["per_gpu"]["weights_gib"] == 5.5
