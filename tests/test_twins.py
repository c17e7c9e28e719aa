"""One source of facts: a config's shape comes from its twin, its info: holds only the rest.

The twins are the shipped files in configs/twins/ (the checkpoints' published config.json or
params.json); every test reads them, or a twin written beside a user config, as the catalog does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import Run, builtin_text
from tests.test_cli import _toolkit
from toolkit.catalog import twins
from toolkit.catalog.configs import Catalog
from toolkit.paths import REPO_ROOT

CATALOG = Catalog.load()
TWINS = REPO_ROOT / "configs" / "twins"
TWINNED = [name for name, config in CATALOG.items() if CATALOG.twin(config)]
LLAMA3_8B_TWIN = TWINS / "meta-llama--Meta-Llama-3-8B-Instruct.json"


@pytest.mark.parametrize("name", TWINNED)
def test_no_shipped_info_block_repeats_its_twin(name: str) -> None:
    config = CATALOG[name]
    twin = CATALOG.twin(config)
    assert twin is not None
    said = twins.facts(twins.read(twin))
    written = yaml.safe_load((REPO_ROOT / "configs" / f"{name}.yaml").read_text())["info"]
    assert {"layers", "kv_heads", "head_dim", "hidden", "vocab"} <= set(said)
    assert not set(written) & set(said), "the twin says it"
    assert config.info is not None
    assert config.info.model_dump(include=set(said)) == said


def test_every_shipped_vllm_config_of_the_hub_has_a_twin() -> None:
    hub = {n for n, c in CATALOG.items() if c.backend == "vllm" and c.source.hf}
    assert hub and hub <= set(TWINNED)


def test_mistral_params_json_and_falcon_name_the_facts_their_own_way() -> None:
    codestral = twins.facts(twins.read(TWINS / "mistralai--Codestral-22B-v0.1.json"))
    assert codestral == {
        "layers": 56,
        "heads": 48,
        "hidden": 6144,
        "intermediate": 16384,
        "vocab": 32768,
        "kv_heads": 8,
        "head_dim": 128,
    }, "params.json states no context: the config's info: gives max_position"
    falcon = twins.facts(twins.read(TWINS / "tiiuae--falcon-11B.json"))
    assert (falcon["kv_heads"], falcon["intermediate"]) == (8, 16384)


def test_the_context_is_the_one_rope_scaling_gives() -> None:
    llama31 = twins.read(TWINS / "meta-llama--Llama-3.1-405B-Instruct.json")
    assert twins.facts(llama31)["max_position"] == 131072, "llama3 RoPE: already scaled"
    stretched = llama31 | {
        "max_position_embeddings": 32768,
        "rope_scaling": {"rope_type": "yarn", "factor": 4.0},
    }
    assert twins.facts(stretched)["max_position"] == 131072


def test_an_info_value_the_twin_contradicts_is_refused(run: Run, user_catalog) -> None:
    text = builtin_text("llama3-8b").replace(
        "  params_b: 8.03\n", "  params_b: 8.03\n  layers: 30\n"
    )
    directory = user_catalog("mine.yaml", text)
    result = run("--catalog", str(directory), "plan", "mine")
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {directory / 'mine.yaml'}: info.layers is 30 but its twin configs/twins/"
        f"{LLAMA3_8B_TWIN.name} says 32; remove info.layers, since the twin's value is the "
        "checkpoint's.\n",
    )
    agreeing = text.replace("  layers: 30\n", "  layers: 32\n")
    (directory / "mine.yaml").write_text(agreeing)
    assert run("--catalog", str(directory), "plan", "mine").exit_code == 0


def test_a_twin_that_is_not_json_is_refused(run: Run, user_catalog) -> None:
    directory = user_catalog("mine.yaml", builtin_text("llama3-8b"))
    (directory / "twins").mkdir()
    (directory / "twins" / LLAMA3_8B_TWIN.name).write_text("{not json")
    result = run("--catalog", str(directory), "plan", "mine")
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {directory / 'mine.yaml'}: its twin {directory / 'twins' / LLAMA3_8B_TWIN.name} "
        "is not a readable JSON object (Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)); replace it with the checkpoint's published config.json.\n",
    )


def test_show_says_where_the_facts_came_from(run: Run) -> None:
    shown = json.loads(run("show", "llama3.1-405b_8", "--json").stdout)
    assert shown["facts_from"] == {
        "configs/twins/meta-llama--Llama-3.1-405B-Instruct-FP8.json": [
            "layers",
            "heads",
            "hidden",
            "intermediate",
            "vocab",
            "max_position",
            "kv_heads",
            "head_dim",
        ],
        "info": ["params_b", "weights", "unquantized_b"],
    }
    demo = json.loads(run("show", "demo-vllm", "--json").stdout)["facts_from"]
    assert demo == {
        "info": [
            "params_b",
            "layers",
            "kv_heads",
            "head_dim",
            "hidden",
            "intermediate",
            "vocab",
            "max_position",
        ]
    }, "a local model's facts, with no twin kept"
    text = run("show", "llama3-8b").stdout
    assert "facts_from:\n  configs/twins/meta-llama--Meta-Llama-3-8B-Instruct.json:\n" in text


def test_an_edited_twin_is_read_again_past_the_cache(tmp_path: Path, user_catalog) -> None:
    """The fast path's cache is keyed on the twins too: a twin's edit changes the plan."""
    directory = user_catalog("mine.yaml", builtin_text("llama3-8b"))
    (directory / "twins").mkdir()
    twin = directory / "twins" / LLAMA3_8B_TWIN.name
    twin.write_text(LLAMA3_8B_TWIN.read_text())
    before = _toolkit(tmp_path, "plan", "mine", "--json", catalog=str(directory))
    halved = json.loads(LLAMA3_8B_TWIN.read_text()) | {"num_hidden_layers": 16}
    twin.write_text(json.dumps(halved))
    after = _toolkit(tmp_path, "plan", "mine", "--json", catalog=str(directory))
    assert (before.returncode, after.returncode) == (0, 0), after.stderr
    kv = [json.loads(r.stdout)["per_gpu"]["kv_needed_gib"] for r in (before, after)]
    assert kv == [1.0, 0.5], "16 layers cache half the KV of 32"
