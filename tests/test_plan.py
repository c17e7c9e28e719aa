"""`toolkit plan`: the estimator against published measurements, and every config fits."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Run, builtin_text, untwinned
from tests.test_cli import _toolkit
from toolkit.catalog.configs import Catalog
from toolkit.host import engine as docker_engine
from toolkit.host.gpus import Gpu, parse_nvidia_smi
from toolkit.lifecycle import preflight
from toolkit.paths import REPO_ROOT
from toolkit.plan import memory as plan

TWINS = REPO_ROOT / "configs" / "twins"

CATALOG = Catalog.load()
LLAMA3_8B = CATALOG["llama3-8b"]


@pytest.mark.parametrize("name", list(CATALOG))
def test_every_config_fits_its_declared_gpus_on_80gb_cards(name: str) -> None:
    result = plan.plan(CATALOG[name], CATALOG.backend(CATALOG[name]))
    assert result.fits, result.reasons
    assert result.gpus == CATALOG[name].gpus
    if CATALOG[name].backend == "vllm" and CATALOG[name].gpus:
        asked = CATALOG[name].engine_args.get("max-model-len")
        assert asked and result.max_context_tokens >= asked


def test_weights_and_kv_match_vllms_profile_of_llama3_8b() -> None:
    """vLLM PR 10511, 79.22 GiB available: weights 14.96 GiB, KV cache 53.29 GiB."""
    result = plan.plan(LLAMA3_8B, CATALOG.backend(LLAMA3_8B), gpu_memory_gib=79.22)
    assert result.per_gpu.weights_gib == pytest.approx(14.96, rel=0.03)
    assert result.per_gpu.kv_cache_gib == pytest.approx(53.29, rel=0.10)
    assert result.per_gpu.kv_cache_gib < 53.29, "errs towards 'does not fit'"


def test_weights_match_vllms_load_of_llama31_405b_fp8_at_tp8() -> None:
    """vLLM issue 6746: 'Loading model weights took 57.7520 GB' per GPU (GiB, in vLLM's logs)."""
    result = plan.plan(CATALOG["llama3.1-405b_8"], CATALOG.backend(CATALOG["llama3.1-405b_8"]))
    assert result.per_gpu.weights_gib == pytest.approx(57.75, rel=0.03)


def test_bf16_llama3_70b_on_one_gpu_does_not_fit_and_says_why(run: Run, user_catalog) -> None:
    text = builtin_text("llama3-70b_1")
    text = (
        text.replace(
            "casperhansen/llama-3-70b-instruct-awq", "meta-llama/Meta-Llama-3-70B-Instruct"
        )
        .replace("  weights: int4\n", "")
        .replace("  quantization: awq\n", "")
    )
    directory = user_catalog("llama3-70b_1.yaml", text)
    # the bf16 checkpoint's config.json is the AWQ one's without its quantization_config
    awq = json.loads((TWINS / "casperhansen--llama-3-70b-instruct-awq.json").read_text())
    del awq["quantization_config"]
    (directory / "twins").mkdir()
    (directory / "twins/meta-llama--Meta-Llama-3-70B-Instruct.json").write_text(json.dumps(awq))
    result = run("--catalog", str(directory), "plan", "llama3-70b_1", "--json")
    assert result.exit_code == 1
    verdict = json.loads(result.stdout)
    assert verdict["fits"] is False
    assert verdict["per_gpu"]["weights_gib"] == pytest.approx(131.5, rel=0.01)
    assert set(verdict["per_gpu"]) >= {"weights_gib", "kv_cache_gib", "overhead_gib", "total_gib"}
    assert verdict["gpus"] == 1 and verdict["gpu_memory_gib"] == 79.22
    assert verdict["max_context_tokens"] == 0
    assert verdict["reasons"] == [
        "the weights (131.5 GiB) and overheads (6.5 GiB) exceed the 71.3 GiB vLLM may use per "
        "GPU (0.90 of 79.2 GiB)"
    ]


def test_plan_table_and_options(run: Run) -> None:
    result = run("plan", "qwen2-72b_4", "--gpu-count", "2", "--gpu-memory", "141GiB")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].startswith("qwen2-72b_4 (vllm) on 2 GPU(s) of 141.0 GiB")
    assert result.stdout.splitlines()[-1] == "FITS"
    longer = run("plan", "llama3-8b", "--max-model-len", "16384")
    assert longer.exit_code == 1
    assert "the model takes at most 8192 tokens, not 16384" in longer.stdout


def test_gpu_memory_sizes_parse_and_a_bad_one_is_refused(run: Run) -> None:
    assert plan.parse_size("80GB") == pytest.approx(74.51, rel=0.001)
    assert plan.parse_size("79.2 GiB") == 79.2
    bad = run("plan", "llama3-8b", "--gpu-memory", "lots")
    assert bad.exit_code == 2
    assert bad.stderr == "error: --gpu-memory 'lots' is not a size; write it like 80GiB or 79.2.\n"


def test_start_refuses_what_the_free_memory_cannot_hold() -> None:
    """The preflight's fit check on a host whose GPUs are partly taken (GPU facts as NVML
    would report them; the engine part of start is proved in tests/engine)."""
    busy = [Gpu("0", "NVIDIA H100 80GB HBM3", 79.6, 30.0)]
    with pytest.raises(docker_engine.EngineError) as refused:
        preflight.check_fit(CATALOG, CATALOG["llama3-70b_1"], ["0"], busy, force=False)
    assert str(refused.value).startswith(
        "llama3-70b_1 does not fit GPU(s) 0 with 30.0 GiB free each: the weights (37.1 GiB)"
    )
    assert str(refused.value).endswith("(toolkit plan shows the numbers), or pass --force.")
    preflight.check_fit(CATALOG, CATALOG["llama3-70b_1"], ["0"], busy, force=True)
    with pytest.raises(docker_engine.EngineError, match=r"GPU id\(s\) 3 do not exist on this host"):
        preflight.check_fit(CATALOG, CATALOG["llama3-70b_1"], ["3"], busy, force=False)
    with pytest.raises(docker_engine.EngineError, match="no NVIDIA GPU was found on this host"):
        preflight.check_fit(CATALOG, CATALOG["llama3-70b_1"], ["0"], [], force=False)


def test_nvidia_smi_rows_parse() -> None:
    rows = parse_nvidia_smi("0, NVIDIA H100 80GB HBM3, 81559, 80000\n1, NVIDIA H100, 81559, 512\n")
    assert [(g.index, round(g.total_gib, 2), g.free_gib) for g in rows] == [
        ("0", 79.65, 78.125),
        ("1", 79.65, 0.5),
    ]


@pytest.mark.models
def test_model_facts_are_read_from_a_local_model_directory(tiny_models, run: Run) -> None:
    from transformers import AutoModelForCausalLM

    from toolkit.plan import facts as modelinfo

    directory = tiny_models / "Tiny-Llama"
    info = modelinfo.read(str(directory))
    model = AutoModelForCausalLM.from_pretrained(directory)
    assert info.params_b * 1e9 == pytest.approx(model.num_parameters())
    assert (info.layers, info.kv_heads, info.head_dim, info.hidden, info.max_position) == (
        2,
        2,
        64,
        128,
        512,
    )
    result = run("plan", "llama3-8b", "--model", str(directory), "--max-model-len", "512", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["per_gpu"]["weights_gib"] == 0.0


def test_an_unreachable_hub_repo_is_one_sentence(run: Run) -> None:
    result = run(
        "plan",
        "llama3-8b",
        "--model",
        "meta-llama/Meta-Llama-3-8B-Instruct",
        env={"HF_HUB_OFFLINE": "1"},
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "error: cannot read meta-llama/Meta-Llama-3-8B-Instruct from the Hugging Face Hub "
        "(LocalEntryNotFoundError); check the name and the network (or HF_HUB_OFFLINE), or "
        "point --model at a local directory.\n"
    )


def test_a_gpu_count_vllm_would_refuse_is_named_with_the_counts_that_work(run: Run) -> None:
    result = run("plan", "llama3-70b_4", "--gpu-count", "3")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1] == (
        "DOES NOT FIT: vLLM refuses it: 3 GPUs do not divide the model's 64 attention heads. "
        "Use a GPU count that does: 1, 2, 4, 8."
    )
    gemma = run("plan", "gemma2-27b_4", "--gpu-count", "6").stdout.splitlines()[-1]
    assert "6 GPUs do not divide the model's 32 attention heads" in gemma, "heads from info"


def test_advice_is_what_can_help(run: Run) -> None:
    weights = run("plan", "llama3.1-405b_8", "--gpu-count", "1").stdout.splitlines()[-1]
    assert weights.endswith(
        "Serve it on at least 8 such GPUs (--gpu-count 8), or a quantized variant."
    ), "a shorter context cannot help when the weights do not fit"
    tight = run("plan", "llama3-8b", "--gpu-memory", "23", "--json")
    longest = json.loads(tight.stdout)["max_context_tokens"]
    assert 0 < longest < 8192
    assert (
        run("plan", "llama3-8b", "--gpu-memory", "23")
        .stdout.splitlines()[-1]
        .endswith(f"Lower --max-model-len to {longest} or less, or add GPUs.")
    )


def test_cpu_configs_say_they_need_no_gpu(run: Run) -> None:
    result = run("plan", "demo-image")
    assert (result.exit_code, result.stdout.splitlines()[0]) == (
        0,
        "demo-image (diffusers) on the CPU: no GPU needed",
    )
    assert "longest context" not in result.stdout and "per GPU" not in result.stdout


def test_plan_refuses_nonsense_sizes_and_two_gpu_options(run: Run) -> None:
    zero = run("plan", "llama3-70b_1", "--gpu-memory", "0")
    assert (zero.exit_code, zero.stderr) == (
        2,
        "error: --gpu-memory '0' is not above zero; give one GPU's memory.\n",
    )
    both = run("plan", "llama3-70b_4", "--gpu-count", "4", "--gpus", "0,1,2,3")
    assert (both.exit_code, both.stderr) == (2, "error: give --gpu-count or --gpus, not both.\n")
    ids = run("plan", "llama3-70b_4", "--gpus", "4,5,6,7", "--json")
    assert json.loads(ids.stdout)["gpus"] == 4, "ids count as GPUs, as start takes them"


def test_the_gpus_planned_choose_the_backend_build(run: Run) -> None:
    """vLLM's CPU variant for no GPU, its GPU build for some, whatever the config declares."""
    on_gpu = run("plan", "demo-vllm", "--gpu-count", "1").stdout.splitlines()[0]
    assert on_gpu == "demo-vllm (vllm) on 1 GPU(s) of 79.22 GiB, utilization 0.90"
    on_cpu = run("plan", "llama3-8b", "--gpu-count", "0").stdout.splitlines()[0]
    assert on_cpu == "llama3-8b (vllm) on the CPU: no GPU needed"


def test_a_vllm_config_without_its_context_is_unknown_not_fits(tmp_path, user_catalog) -> None:
    """vLLM serves the model's max_position_embeddings, which the config does not give: the
    plan cannot say yes, so it says what to add and exits 1, from the fast path's cache too."""
    text = untwinned("me/no-context").replace("  max_position: 8192\n", "")
    text = text.replace("engine_args:\n  max-model-len: 8192\n", "")
    assert "max_position" not in text and "max-model-len" not in text
    directory = user_catalog("no-context.yaml", text)
    answers = [_toolkit(tmp_path, "plan", "no-context", catalog=str(directory)) for _ in "ab"]
    assert [a.returncode for a in answers] == [1, 1], answers[0].stderr
    assert answers[0].stdout == answers[1].stdout, "the cached answer is the same"
    lines = answers[0].stdout.splitlines()
    assert lines[-2:] == [
        "  longest context that fits: 417529 tokens",
        "UNKNOWN: the context vLLM would serve is unknown: add info.max_position (the model's "
        "max_position_embeddings) or engine_args.max-model-len.",
    ]
    verdict = json.loads(
        _toolkit(tmp_path, "plan", "no-context", "--json", catalog=str(directory)).stdout
    )
    assert (verdict["fits"], verdict["context_tokens"], verdict["reasons"]) == (None, 0, [])
    assert verdict["unknown"] == [lines[-1].removeprefix("UNKNOWN: ").removesuffix(".")]
    assert verdict["per_gpu"]["kv_needed_gib"] is None
    asked = _toolkit(
        tmp_path, "plan", "no-context", "--max-model-len", "8192", catalog=str(directory)
    )
    assert (asked.returncode, asked.stdout.splitlines()[-1]) == (0, "FITS")


def test_a_kv_cache_without_its_shape_is_unknown_not_zero(run: Run, user_catalog) -> None:
    text = builtin_text("minicpm-v2.6").replace("  layers: 28\n", "")
    directory = user_catalog("minicpm-v2.6.yaml", text)
    result = run("--catalog", str(directory), "plan", "minicpm-v2.6")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-3:] == [
        "  KV cache               unknown",
        "  total                  unknown",
        "UNKNOWN: the KV cache of its 4096-token context is unknown: add info.layers, kv_heads "
        "and head_dim (the model's config.json).",
    ]
    data = json.loads(run("--catalog", str(directory), "plan", "minicpm-v2.6", "--json").stdout)
    assert data["fits"] is None
    assert (data["per_gpu"]["kv_cache_gib"], data["per_gpu"]["total_gib"]) == (None, None)
    small = run("--catalog", str(directory), "plan", "minicpm-v2.6", "--gpu-memory", "4")
    assert small.stdout.splitlines()[-1] == (
        "DOES NOT FIT: it needs at least 6.5 GiB per GPU and a GPU has 4.0 GiB. Use GPUs with "
        "more memory, or a smaller or quantized variant."
    ), "what is known already rules it out"


CPU_ADVICE = (
    "Raise its memory_limit (the host must have the memory), or serve it on GPUs or a smaller "
    "or quantized variant."
)


def test_a_cpu_plan_is_held_to_the_containers_memory_limit(run: Run, user_catalog) -> None:
    text = builtin_text("demo-vllm").replace("  params_b: 0.0001\n", "  weights_gib: 14\n")
    directory = user_catalog("demo-vllm.yaml", text + "memory_limit: 8g\n")
    result = run("--catalog", str(directory), "plan", "demo-vllm")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[1:] == [
        "  host memory: weights 14.00 GiB, overhead 2.00 GiB; memory limit 8.00 GiB",
        "DOES NOT FIT: it needs 16.0 GiB of memory and its memory limit (8g) allows 8.0 GiB. "
        + CPU_ADVICE,
    ]
    (directory / "demo-vllm.yaml").write_text(text + "memory_limit: 16384m\n", encoding="utf-8")
    roomy = run("--catalog", str(directory), "plan", "demo-vllm", "--json")
    assert roomy.exit_code == 0
    assert json.loads(roomy.stdout)["memory_limit_gib"] == 16.0


def test_planning_a_gpu_config_for_no_gpu_plans_its_cpu_variant(run: Run) -> None:
    """--gpu-count 0 plans what `start --gpus ''` would run: the CPU build, within the memory
    limit its compose file would give (the backend's default, 8g)."""
    result = run("plan", "llama3-70b_4", "--gpu-count", "0")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "llama3-70b_4 (vllm) on the CPU: no GPU needed",
        "  host memory: weights 37.09 GiB, overhead 2.00 GiB; memory limit 8.00 GiB",
        "DOES NOT FIT: it needs 39.1 GiB of memory and its memory limit (8g) allows 8.0 GiB. "
        + CPU_ADVICE,
    ]


def test_start_refuses_what_cannot_fit_not_what_is_unknown(user_catalog) -> None:
    text = untwinned("me/no-context").replace("  max_position: 8192\n", "")
    text = text.replace("engine_args:\n  max-model-len: 8192\n", "")
    catalog = Catalog.load(user_catalog("no-context.yaml", text))
    gpu = [Gpu("0", "NVIDIA H100 80GB HBM3", 79.6, 79.0)]
    preflight.check_fit(catalog, catalog["no-context"], ["0"], gpu, force=False)
    small = [Gpu("0", "NVIDIA L4", 22.0, 10.0)]
    with pytest.raises(docker_engine.EngineError) as refused:
        preflight.check_fit(catalog, catalog["no-context"], ["0"], small, force=False)
    assert str(refused.value).startswith(
        "no-context does not fit GPU(s) 0 with 10.0 GiB free each: the weights (15.0 GiB)"
    ), "what is known still refuses"
