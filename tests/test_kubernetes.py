"""The Kubernetes target: golden files, schemas, kustomize, hardening, quoting, the CLI.

No API server runs here (none installs from the registries this machine reaches): every manifest
is validated offline with kubernetes-validate's bundled schemas of Kubernetes
toolkit.render.kubernetes.KUBERNETES_VERSION in strict mode, the LeaderWorkerSet with jsonschema
against its CRD's vendored openAPIV3Schema (tests/fixtures/lws), the KEDA ScaledObject against a
subset of its CRD's schema written from the published CRD (tests/fixtures/keda), and every
directory is built with the real `kubectl kustomize`. On a real cluster:
`kubectl apply --dry-run=server -k DIR`, then apply.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.conftest import Run, builtin_text
from toolkit.catalog import names
from toolkit.catalog.configs import Catalog
from toolkit.errors import UsageError
from toolkit.paths import REPO_ROOT
from toolkit.render import Cluster, kubernetes
from toolkit.render import compose as render

FIXTURES = REPO_ROOT / "tests" / "fixtures"
GOLDEN = FIXTURES / "kubernetes"
# One GPU, several GPUs on one host, CPU only, and two hosts.
GOLDEN_CONFIGS = ["llama3-8b", "llama3-70b_4", "demo-image", "llama3.1-405b_16"]
IMAGES = kubernetes.Images("registry.example", "my-org")
NAMES = list(Catalog.load())
# Every cluster option at once, so every manifest the options can add is validated too.
EVERYTHING = Cluster(
    cpu_request="6",
    memory_request="32Gi",
    memory_limit="200Gi",
    tolerations=("dedicated=ml:NoExecute", "spot:PreferNoSchedule"),
    node_selector=("pool=gpu",),
    runtime_class="nvidia",
    priority_class="model-serving",
    gpu_products=("NVIDIA-H100-80GB-HBM3", "NVIDIA-H200"),
    shared_storage_class="nfs-rwx",
    api_from=("ingress-nginx", "monitoring"),
    top_level=True,
    autoscale_max=4,
    prometheus="http://prometheus.monitoring:9090",
)


def _manifests(files: dict[Path, str]) -> list[dict[str, Any]]:
    docs = []
    for path, text in files.items():
        if path.name != "kustomization.yaml":
            docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def _pods(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] == "Deployment":
        return [doc["spec"]["template"]["spec"]]
    if doc["kind"] == "LeaderWorkerSet":
        group = doc["spec"]["leaderWorkerTemplate"]
        return [group["leaderTemplate"]["spec"], group["workerTemplate"]["spec"]]
    return []


def _lws_validator() -> jsonschema.Draft202012Validator:
    """The CRD's schema, with unknown fields refused as server-side strict validation does."""
    schema = json.loads((FIXTURES / "lws" / "leaderworkerset-v1.schema.json").read_text())

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return jsonschema.Draft202012Validator(schema)


def _keda_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((FIXTURES / "keda" / "scaledobject-v1alpha1.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)


def _validate(doc: dict[str, Any]) -> None:
    if doc["kind"] == "LeaderWorkerSet":
        _lws_validator().validate(doc)
    elif doc["kind"] == "ScaledObject":
        _keda_validator().validate(doc)
    else:
        kubernetes_validate.validate(doc, kubernetes.KUBERNETES_VERSION, strict=True)


def _docs(catalog: Catalog, name: str, cluster: Cluster | None = None) -> dict[str, Any]:
    """One config's manifests by kind."""
    return {
        d["kind"]: d for d in _manifests(kubernetes.outputs(catalog, [name], IMAGES, None, cluster))
    }


@pytest.mark.parametrize("name", GOLDEN_CONFIGS)
def test_rendering_matches_the_golden_files(catalog: Catalog, name: str) -> None:
    """To accept a deliberate change: TOOLKIT_UPDATE_GOLDEN=1 pytest tests/test_kubernetes.py."""
    files = kubernetes.config_files(catalog, catalog[name], IMAGES)
    directory = GOLDEN / kubernetes.resource_name(catalog[name])
    if os.environ.get("TOOLKIT_UPDATE_GOLDEN"):
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        for file_name, text in files.items():
            (directory / file_name).write_text(text, encoding="utf-8")
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in directory.iterdir()}
    assert on_disk == files


@pytest.mark.parametrize("name", NAMES)
def test_every_manifest_passes_the_pinned_kubernetes_schemas_strictly(
    catalog: Catalog, name: str
) -> None:
    files = kubernetes.outputs(catalog, [name], IMAGES, ingress_host="models.example.com")
    docs = _manifests(files)
    kinds = sorted(d["kind"] for d in docs)
    workload = "LeaderWorkerSet" if catalog[name].nodes > 1 else "Deployment"
    assert workload in kinds and "Service" in kinds and "Ingress" in kinds
    for doc in docs:
        _validate(doc)
    with_options = _manifests(
        kubernetes.outputs(catalog, [name], IMAGES, "models.example.com", EVERYTHING)
    )
    for doc in with_options:
        _validate(doc)


def test_strict_validation_refuses_an_unknown_field(catalog: Catalog) -> None:
    """The checks above would catch a misspelt field: both validators refuse one."""
    docs = _manifests(kubernetes.outputs(catalog, ["llama3.1-405b_16"], IMAGES))
    service = next(d for d in docs if d["kind"] == "Service")
    service["spec"]["clusterIp"] = "None"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, kubernetes.KUBERNETES_VERSION, strict=True)
    lws = next(d for d in docs if d["kind"] == "LeaderWorkerSet")
    lws["spec"]["leaderWorkerTemplate"]["sise"] = 2
    with pytest.raises(jsonschema.ValidationError, match="'sise' was unexpected"):
        _lws_validator().validate(lws)
    scaled = _docs(catalog, "llama3-8b", EVERYTHING)["ScaledObject"]
    scaled["spec"]["maxReplicas"] = 4
    with pytest.raises(jsonschema.ValidationError, match="'maxReplicas' was unexpected"):
        _keda_validator().validate(scaled)


def _kubectl() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl is missing: scripts/ensure-test-tools.sh installs it")
        pytest.skip("kubectl is not installed (scripts/ensure-test-tools.sh installs it)")
    return kubectl


@pytest.mark.parametrize("cluster", [None, EVERYTHING], ids=["defaults", "every-option"])
def test_kubectl_kustomize_builds_every_config_directory(
    catalog: Catalog, tmp_path: Path, cluster: Cluster | None
) -> None:
    kubectl = _kubectl()
    written = kubernetes.write(catalog, None, tmp_path, False, "registry.example", cluster=cluster)
    directories = sorted({p.parent for p in written} - {tmp_path})
    assert len(directories) == len(catalog)
    for directory in directories:
        built = subprocess.run(
            [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False
        )
        assert built.returncode == 0, f"{directory}: {built.stderr}"
        docs = [d for d in yaml.safe_load_all(built.stdout) if d]
        assert {d["kind"] for d in docs} >= {"Service"}
        assert all(d["metadata"]["name"].startswith("toolkit-") for d in docs)


def test_kubectl_kustomize_builds_the_whole_catalog(catalog: Catalog, tmp_path: Path) -> None:
    kubectl = _kubectl()
    version = subprocess.run(
        [kubectl, "version", "--client", "-o", "json"], capture_output=True, text=True, check=True
    )
    minor = int(json.loads(version.stdout)["clientVersion"]["minor"].rstrip("+"))
    if minor < 21:
        pytest.skip(
            f"kubectl 1.{minor} (Debian 12's kubernetes-client) bundles kustomize v2.0.3, which "
            "takes no directories as resources; the per-config directories are built above"
        )
    kubernetes.write(
        catalog, None, tmp_path, False, "registry.example", cluster=Cluster(top_level=True)
    )
    everything = subprocess.run(
        [kubectl, "kustomize", str(tmp_path)], capture_output=True, text=True, check=True
    )
    kinds = [d["kind"] for d in yaml.safe_load_all(everything.stdout) if d]
    assert kinds.count("Service") == len(catalog)
    assert kinds.count("LeaderWorkerSet") == 1


@pytest.mark.parametrize("name", NAMES)
def test_pods_are_hardened_and_hold_what_the_config_asks(catalog: Catalog, name: str) -> None:
    config = catalog[name]
    docs = _manifests(kubernetes.outputs(catalog, [name], IMAGES))
    pods = [pod for doc in docs for pod in _pods(doc)]
    assert len(pods) == (2 if config.nodes > 1 else 1)
    uid = catalog.backend(config).run_as_uid
    for pod in pods:
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["securityContext"].get("runAsNonRoot", False) is (uid is not None)
        assert pod["securityContext"].get("runAsUser") == uid
        assert pod["automountServiceAccountToken"] is False
        (container,) = pod["containers"]
        assert container["image"] == f"registry.example/my-org/{name}:" + (
            catalog.backend(config).version
        )
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        limits = container.get("resources", {}).get("limits", {})
        assert limits.get("nvidia.com/gpu", 0) == config.gpus
        env = {e["name"]: e for e in container["env"]}
        assert "HF_TOKEN" not in env, "the token is a mounted file, never an env value"
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["cache"] == "/cache"
        if config.gated:
            assert env["HF_TOKEN_PATH"]["value"] == mounts["hf-token"] == "/run/secrets/hf_token"
        else:
            assert "hf-token" not in mounts
        volumes = {v["name"]: v for v in pod["volumes"]}
        if config.shm_size or config.gpus > 1:
            assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
            assert mounts["dshm"] == "/dev/shm"
    leader = pods[0]["containers"][0]
    startup = leader["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= config.startup_seconds
    assert "exec" in leader["readinessProbe"] and "exec" in leader["livenessProbe"]


def test_multi_node_config_is_a_leader_worker_set_of_one_ray_cluster(catalog: Catalog) -> None:
    config = catalog["llama3.1-405b_16"]
    docs = _manifests(kubernetes.outputs(catalog, [config.name], IMAGES))
    lws = next(d for d in docs if d["kind"] == "LeaderWorkerSet")
    group = lws["spec"]["leaderWorkerTemplate"]
    assert group["size"] == config.nodes == 2
    assert group["restartPolicy"] == "RecreateGroupOnPodRestart"
    assert group["volumeClaimTemplates"][0]["metadata"]["name"] == "cache"
    worker = group["workerTemplate"]["spec"]["containers"][0]
    assert worker["command"] == ["ray", "start", "--address=$(LWS_LEADER_ADDRESS):6379", "--block"]
    assert "readinessProbe" not in worker, "only the leader serves"
    shell, flag, script = group["leaderTemplate"]["spec"]["containers"][0]["command"]
    assert (shell, flag) == ("sh", "-c")
    lines = script.splitlines()
    assert lines[1] == "ray start --head --port=6379 --disable-usage-stats"
    serve = shlex.split(lines[-1])
    assert serve[:3] == ["exec", "vllm", "serve"]
    assert serve[serve.index("--tensor-parallel-size") + 1] == "8"
    assert serve[serve.index("--pipeline-parallel-size") + 1] == "2"
    wait = shlex.split(script[script.index("python3 -c") : script.index("\nexec ")])
    assert wait[-2:] == ["2", "16"], "waits for both nodes and all 16 GPUs"
    service = next(d for d in docs if d["kind"] == "Service")
    assert service["spec"]["selector"]["leaderworkerset.sigs.k8s.io/worker-index"] == "0"
    assert not any(d["kind"] == "PersistentVolumeClaim" for d in docs)


def expanded(value: str, env: dict[str, str]) -> str:
    """What the kubelet makes of a command, args or env value, by the rule Kubernetes documents
    (no kubelet runs here): `$$` is `$`, `$(NAME)` is NAME's value when NAME is set."""
    reference = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        return env.get(name, match.group(0))

    return reference.sub(one, value)


def test_hostile_values_stay_quoted(user_catalog) -> None:
    hostile = "x\"\n  evil: true\n'; $(reboot) $(HOME) $$ $(TOOLKIT_NOTE) `id` #"
    data = yaml.safe_load(builtin_text("llama3.1-405b_16"))
    data |= {"model": hostile, "description": hostile, "env": {"TOOLKIT_NOTE": hostile}}
    data["engine_args"]["chat-template"] = hostile
    text = yaml.safe_dump(data)
    catalog = Catalog.load(user_catalog("llama3.1-405b_16.yaml", text))
    config = catalog["llama3.1-405b_16"]
    files = kubernetes.outputs(catalog, [config.name], IMAGES)
    docs = _manifests(files)
    kinds = ["LeaderWorkerSet", "NetworkPolicy", "PodDisruptionBudget", "Service"]
    assert sorted(d["kind"] for d in docs) == kinds
    lws = next(d for d in docs if d["kind"] == "LeaderWorkerSet")
    assert lws["metadata"]["annotations"]["org.opencontainers.image.description"] == hostile
    assert "io.github.model-serving-toolkit.model" not in lws["metadata"]["labels"], (
        "a value that is not a label value goes to the annotations only"
    )
    leader = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]
    env = {entry["name"]: entry["value"] for entry in leader["env"] if "value" in entry}
    assert expanded(env["TOOLKIT_NOTE"], env) == hostile, "Kubernetes expands nothing of it"
    words = shlex.split(expanded(leader["command"][2], env))
    serve = words[words.index("exec") :]
    assert serve[:3] == ["exec", "vllm", "serve"]
    assert serve[serve.index("--served-model-name") + 1] == hostile
    assert serve[serve.index("--chat-template") + 1] == hostile
    _lws_validator().validate(lws)


def test_a_deployments_args_reach_the_server_as_written(user_catalog) -> None:
    value = "$(HOME)/t.jinja $$ $(HF_HOME)"
    data = yaml.safe_load(builtin_text("llama3-8b"))
    data["engine_args"]["chat-template"] = value
    catalog = Catalog.load(user_catalog("llama3-8b.yaml", yaml.safe_dump(data)))
    files = kubernetes.outputs(catalog, ["llama3-8b"], IMAGES)
    deployment = next(d for d in _manifests(files) if d["kind"] == "Deployment")
    model = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {entry["name"]: entry["value"] for entry in model["env"] if "value" in entry}
    assert "HOME" in env and "HF_HOME" in env, "the references would expand without the escape"
    args = [expanded(word, env) for word in model["args"]]
    assert args[args.index("--chat-template") + 1] == value


@pytest.mark.models
def test_readiness_probe_passes_only_once_the_real_server_lists_the_model(
    catalog: Catalog, tiny_models: Path
) -> None:
    """The demo-image manifest's exec probe, run against the project's real diffusers server."""
    from tests.servers import diffusers_server

    docs = _manifests(kubernetes.outputs(catalog, ["demo-image"], IMAGES))
    container = _pods(next(d for d in docs if d["kind"] == "Deployment"))[0]["containers"][0]
    command = container["readinessProbe"]["exec"]["command"]
    assert command[-1] == "TOOLKIT_API_KEY"

    def probe(url: str, model: str, key: str | None) -> int:
        argv = [*command[:-3], f"{url}/v1/models", model, command[-1]]
        env = {k: v for k, v in os.environ.items() if k != "TOOLKIT_API_KEY"}
        if key is not None:
            env["TOOLKIT_API_KEY"] = key
        return subprocess.run(argv, env=env, capture_output=True, check=False).returncode

    with diffusers_server(tiny_models / "tiny-diffusion", api_key="k3y") as url:
        assert probe(url, "Tiny-Diffusion", "k3y") == 0
        assert probe(url, "Another-Model", "k3y") == 1, "answering is not listing this model"
        assert probe(url, "Tiny-Diffusion", None) != 0, "the server refuses a probe without key"


K8S = ["render", "--target", "kubernetes", "-o", "{out}", "--registry", "r.example"]
ERRORS = {
    "no registry": (
        ["render", "--target", "kubernetes", "-o", "{out}"],
        "the kubernetes target needs --registry HOST: the registry `toolkit push` pushed the "
        "images to.",
    ),
    "no output": (
        ["render", "--target", "kubernetes", "--registry", "r.example"],
        "the kubernetes target needs --output DIR: the folder to write to.",
    ),
    "check": (
        ["render", "--target", "kubernetes", "--check", "-o", "{out}", "--registry", "r.example"],
        "--check compares the repository's files; drop it with --target kubernetes.",
    ),
    "kubernetes options without the target": (
        ["render", "-o", "{out}", "--registry", "r.example"],
        "--registry, --namespace, --tag and --ingress-host go with --target kubernetes.",
    ),
    "cluster options without the target": (
        ["render", "-o", "{out}", "--top-level"],
        "the cluster options (--cpu-request, --toleration, --top-level and the like) go with "
        "--target kubernetes.",
    ),
    "not a quantity": (
        [*K8S, "--memory-limit", "64GB", "llama3-8b"],
        "--memory-limit '64GB' is not a Kubernetes quantity; write it like 4, 500m or 64Gi.",
    ),
    "request above the limit": (
        [*K8S, "--memory-request", "100Gi", "demo-image"],
        "the memory request 100Gi of demo-image is above its limit 8Gi; lower --memory-request "
        "or raise --memory-limit.",
    ),
    "not a toleration": (
        [*K8S, "--toleration", "dedicated=ml", "llama3-8b"],
        "--toleration 'dedicated=ml' is not KEY[=VALUE]:EFFECT with EFFECT NoSchedule, "
        "PreferNoSchedule or NoExecute; write it like nvidia.com/gpu:NoSchedule.",
    ),
    "not a node label": (
        [*K8S, "--node-selector", "pool", "llama3-8b"],
        "--node-selector 'pool' is not KEY=VALUE; write it like "
        "node.kubernetes.io/instance-type=p5.48xlarge.",
    ),
    "not a product label": (
        [*K8S, "--gpu-product", "NVIDIA H100", "llama3-8b"],
        "--gpu-product 'NVIDIA H100' is not a label value; write it as the GPU operator labels "
        "nodes, e.g. NVIDIA-H100-80GB-HBM3.",
    ),
    "a GPU too small for the plan": (
        [*K8S, "--gpu-product", "NVIDIA-A10-24GB", "llama3.1-405b_16"],
        "--gpu-product NVIDIA-A10-24GB leaves about 23.8 GiB per GPU, too little for "
        "llama3.1-405b_16 (see toolkit plan llama3.1-405b_16 --gpu-memory 23.8); name a larger "
        "GPU.",
    ),
    "not a namespace": (
        [*K8S, "--api-from", "Bad_NS!", "llama3-8b"],
        "--api-from 'Bad_NS!' is not a namespace name; name one, or '*' for anywhere.",
    ),
    "autoscaling without prometheus": (
        [*K8S, "--autoscale-max", "3", "llama3-8b"],
        "--autoscale-max needs --prometheus URL: the Prometheus that scrapes the servers.",
    ),
    "prometheus without autoscaling": (
        [*K8S, "--prometheus", "http://p:9090", "llama3-8b"],
        "--prometheus goes with --autoscale-max N; add it or drop both.",
    ),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_bad_options_are_one_sentence(run: Run, tmp_path: Path, case: str) -> None:
    args, message = ERRORS[case]
    result = run(*[a.replace("{out}", str(tmp_path / "out")) for a in args])
    assert result.exit_code == 2
    assert result.stderr == f"error: {message}\n"
    assert not (tmp_path / "out").exists()


def test_cli_writes_one_directory_per_config_and_keeps_foreign_files(
    run: Run, tmp_path: Path
) -> None:
    out = tmp_path / "k8s"
    args = ["render", "--target", "kubernetes", "-o", str(out), "--registry", "r.example"]
    result = run(*args, "--top-level", "llama3-8b", "flux.1-dev")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"rendered 13 files for 2 configs in {out}\n"
    top = yaml.safe_load((out / "kustomization.yaml").read_text())
    assert top["resources"] == ["toolkit-flux-1-dev", "toolkit-llama3-8b"]
    (out / "toolkit-llama3-8b" / "notes.txt").write_text("mine")
    refused = run(*args)
    assert refused.exit_code == 2
    assert refused.stderr == (
        f"error: {out} holds files the toolkit did not write "
        f"({out / 'toolkit-llama3-8b' / 'notes.txt'}); choose an empty folder or one it "
        "rendered before.\n"
    )
    (out / "toolkit-llama3-8b" / "notes.txt").unlink()
    assert run(*args).exit_code == 0
    assert len([p for p in out.iterdir() if p.is_dir()]) == len(NAMES)


def test_an_unusable_name_is_refused_as_bad_input(run: Run, user_catalog, tmp_path: Path) -> None:
    long_name = "a" * 56
    directory = user_catalog(f"{long_name}.yaml", builtin_text("llama3-8b"))
    out = tmp_path / "k8s"
    args = ["--catalog", str(directory), "render", "--target", "kubernetes", "-o", str(out)]
    too_long = run(*args, "--registry", "r.example", long_name)
    assert too_long.exit_code == 2
    assert too_long.stderr == (
        f"error: config name '{long_name}' makes the Kubernetes name 'toolkit-{long_name}', 64 "
        "characters, over the 63 of a DNS label; rename the config to at most 55 characters.\n"
    )
    user_catalog("llama3_8b.yaml", builtin_text("llama3-8b"))
    twins = run(*args, "--registry", "r.example", "llama3-8b", "llama3_8b")
    assert twins.exit_code == 2
    assert twins.stderr == (
        "error: configs 'llama3-8b' and 'llama3_8b' both become the Kubernetes name "
        "'toolkit-llama3-8b'; rename one of them.\n"
    )
    assert not out.exists()
    short = run(*args, "--registry", "r.example", "llama3_8b")
    assert short.exit_code == 0, short.stderr
    header = (out / "toolkit-llama3-8b" / "deployment.yaml").read_text().splitlines()[0]
    assert header == (
        f"# {render.GENERATED_MARK} --target kubernetes from {directory / 'llama3_8b.yaml'}. "
        "Do not edit: edit the config, then render again."
    )


def test_generated_files_carry_the_mark(catalog: Catalog) -> None:
    files = kubernetes.outputs(catalog, ["demo-text"], IMAGES, ingress_host="h.example")
    assert all(text.startswith(f"# {render.GENERATED_MARK}") for text in files.values())


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = _pods(doc)[0]["containers"][0]
    return container


def test_resources_come_from_compose_and_the_model_and_yield_to_the_user(
    catalog: Catalog,
) -> None:
    """Item 1: CPU configs get compose's memory limit; GPU configs request the steady state and
    may use the node's share of the weights above it; the user's values win."""
    cpu = _container(_docs(catalog, "demo-image")["Deployment"])["resources"]
    assert cpu == {"requests": {"cpu": "4", "memory": "8Gi"}, "limits": {"memory": "8Gi"}}
    gpu = _container(_docs(catalog, "llama3-70b_4")["Deployment"])["resources"]
    weights = kubernetes.weights_gib(catalog["llama3-70b_4"].info)  # type: ignore[arg-type]
    assert gpu["requests"] == {"cpu": "10", "memory": "32Gi", "nvidia.com/gpu": 4}
    assert gpu["limits"] == {"memory": f"{32 + math.ceil(weights)}Gi", "nvidia.com/gpu": 4}
    lws = _docs(catalog, "llama3.1-405b_16")["LeaderWorkerSet"]["spec"]["leaderWorkerTemplate"]
    per_node = kubernetes.weights_gib(catalog["llama3.1-405b_16"].info) / 2  # type: ignore[arg-type]
    for template in ("leaderTemplate", "workerTemplate"):
        limits = lws[template]["spec"]["containers"][0]["resources"]["limits"]
        assert limits["memory"] == f"{56 + math.ceil(per_node)}Gi", "each node holds half"
    mine = Cluster(cpu_request="500m", memory_request="20Gi", memory_limit="40Gi")
    own = _container(_docs(catalog, "llama3-8b", mine)["Deployment"])["resources"]
    assert own["requests"] == {"cpu": "500m", "memory": "20Gi", "nvidia.com/gpu": 1}
    assert own["limits"] == {"memory": "40Gi", "nvidia.com/gpu": 1}


def test_gpu_pods_tolerate_the_gpu_taint_and_go_where_the_user_says(catalog: Catalog) -> None:
    """Item 2: the GPU operator's taint by default; products only when named."""
    gpu = _pods(_docs(catalog, "llama3-8b")["Deployment"])[0]
    assert gpu["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert "affinity" not in gpu, "the plan knows a memory size, not a product"
    assert "tolerations" not in _pods(_docs(catalog, "demo-image")["Deployment"])[0]
    lws = _docs(catalog, "llama3.1-405b_16", EVERYTHING)["LeaderWorkerSet"]
    for pod in _pods(lws):
        assert pod["tolerations"][1:] == [
            {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoExecute"},
            {"key": "spot", "operator": "Exists", "effect": "PreferNoSchedule"},
        ]
        assert pod["nodeSelector"] == {"pool": "gpu"}
        (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"
        ]
        assert term["matchExpressions"] == [
            {
                "key": "nvidia.com/gpu.product",
                "operator": "In",
                "values": ["NVIDIA-H100-80GB-HBM3", "NVIDIA-H200"],
            }
        ]
        assert (pod["runtimeClassName"], pod["priorityClassName"]) == ("nvidia", "model-serving")
    cpu = _pods(_docs(catalog, "demo-image", EVERYTHING)["Deployment"])[0]
    assert "affinity" not in cpu and cpu["nodeSelector"] == {"pool": "gpu"}


def test_an_image_push_recorded_is_pinned_by_digest(catalog: Catalog, tmp_path: Path) -> None:
    """Item 3: `toolkit push` records REPOSITORY:TAG -> digest; render pins it, pulls once."""
    digest = "sha256:" + "ab" * 32
    names.record_pushed({"registry.example/my-org/llama3-8b:v0.33.0": digest})
    written = kubernetes.write(
        catalog, ["llama3-8b", "demo-text"], tmp_path, False, "registry.example", "my-org"
    )
    docs = {
        p.parent.name: yaml.safe_load(p.read_text()) for p in written if p.name == "deployment.yaml"
    }
    pinned = _container(docs["toolkit-llama3-8b"])
    assert pinned["image"] == f"registry.example/my-org/llama3-8b:v0.33.0@{digest}"
    assert pinned["imagePullPolicy"] == "IfNotPresent"
    tagged = _container(docs["toolkit-demo-text"])
    assert "@" not in tagged["image"] and tagged["imagePullPolicy"] == "Always"


def test_a_shared_storage_class_gives_the_group_one_model_copy(catalog: Catalog) -> None:
    """Item 4: with a ReadWriteMany class one claim serves leader and workers; without one each
    pod has its own."""
    docs = _docs(catalog, "llama3.1-405b_16", Cluster(shared_storage_class="nfs-rwx"))
    claim = docs["PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["storageClassName"] == "nfs-rwx"
    group = docs["LeaderWorkerSet"]["spec"]["leaderWorkerTemplate"]
    assert "volumeClaimTemplates" not in group
    for pod in _pods(docs["LeaderWorkerSet"]):
        cache = next(v for v in pod["volumes"] if v["name"] == "cache")
        assert cache["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    _lws_validator().validate(docs["LeaderWorkerSet"])
    alone = _docs(catalog, "llama3.1-405b_16")["LeaderWorkerSet"]["spec"]["leaderWorkerTemplate"]
    assert alone["volumeClaimTemplates"][0]["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_network_policy_admits_the_group_to_ray_and_clients_to_the_api(catalog: Catalog) -> None:
    """Item 5."""
    policy = _docs(catalog, "llama3.1-405b_16")["NetworkPolicy"]["spec"]
    selector = {
        "app.kubernetes.io/instance": "toolkit-llama3-1-405b-16",
        "app.kubernetes.io/name": "vllm",
    }
    assert policy["podSelector"] == {"matchLabels": selector}
    assert policy["policyTypes"] == ["Ingress"]
    api, group = policy["ingress"]
    assert api == {"ports": [{"port": "http", "protocol": "TCP"}], "from": [{"podSelector": {}}]}
    assert group == {"from": [{"podSelector": {"matchLabels": selector}}]}
    one = _docs(catalog, "llama3-8b", Cluster(api_from=("monitoring", "ingress-nginx")))
    (api,) = one["NetworkPolicy"]["spec"]["ingress"]
    assert [f["namespaceSelector"]["matchLabels"] for f in api["from"]] == [
        {"kubernetes.io/metadata.name": "ingress-nginx"},
        {"kubernetes.io/metadata.name": "monitoring"},
    ]
    anywhere = _docs(catalog, "llama3-8b", Cluster(api_from=("*",)))["NetworkPolicy"]
    assert anywhere["spec"]["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]


def test_rendering_one_config_keeps_the_others_and_the_top_level_is_a_choice(
    catalog: Catalog, tmp_path: Path
) -> None:
    """Item 6."""
    kubernetes.write(catalog, ["llama3-8b"], tmp_path, False, "r.example")
    assert not (tmp_path / "kustomization.yaml").exists(), "no top level unless asked"
    kubernetes.write(catalog, ["demo-image"], tmp_path, False, "r.example")
    assert (tmp_path / "toolkit-llama3-8b" / "deployment.yaml").exists()
    kubernetes.write(
        catalog, ["demo-text"], tmp_path, False, "r.example", cluster=Cluster(top_level=True)
    )
    top = yaml.safe_load((tmp_path / "kustomization.yaml").read_text())
    assert top["resources"] == ["toolkit-demo-image", "toolkit-demo-text", "toolkit-llama3-8b"]
    kubernetes.write(catalog, ["flux.1-dev"], tmp_path, False, "r.example")
    top = yaml.safe_load((tmp_path / "kustomization.yaml").read_text())
    assert "toolkit-flux-1-dev" in top["resources"], "a top level once there stays complete"
    assert len(top["resources"]) == 4


def test_same_behaviour_as_compose_home_on_the_cache(catalog: Catalog, run: Run) -> None:
    """Item 7: HOME on the cache volume, as the image and compose have it; --registry's help."""
    for name in NAMES:
        config = catalog[name]
        docs = _manifests(kubernetes.outputs(catalog, [name], IMAGES))
        for pod in [p for d in docs for p in _pods(d)]:
            env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
            if catalog.backend(config).run_as_uid is not None:
                assert env["HOME"] == "/cache/home"
            else:
                assert "HOME" not in env
    help_text = " ".join(run("render", "--help").stdout.split())
    assert (
        "--registry HOST Registry `push` pushed the images to (kubernetes: required)." in help_text
    )


def test_a_disruption_budget_and_optional_scaling_on_the_queue(catalog: Catalog) -> None:
    """Item 8: a drain waits for a serving set; KEDA scales on vllm:num_requests_waiting."""
    for name in ("llama3-8b", "llama3.1-405b_16"):
        docs = _docs(catalog, name)
        budget = docs["PodDisruptionBudget"]["spec"]
        assert budget["maxUnavailable"] == 0
        assert budget["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
        config = catalog[name]
        assert budget["selector"]["matchLabels"] == {
            "app.kubernetes.io/instance": kubernetes.resource_name(config),
            "app.kubernetes.io/name": config.backend,
        }, "every pod of the set, leader and workers"
        assert "ScaledObject" not in docs
    scaling = Cluster(autoscale_max=3, prometheus="http://prometheus.monitoring:9090")
    scaled = _docs(catalog, "llama3.1-405b_16", scaling)["ScaledObject"]
    _keda_validator().validate(scaled)
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "name": "toolkit-llama3-1-405b-16",
    }
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["query"] == (
        'sum(vllm:num_requests_waiting{model_name="Llama-3.1-405B"})'
    )
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (1, 3)
    assert "ScaledObject" not in _docs(catalog, "demo-image", scaling), "no queue gauge to scale on"


def test_push_records_the_digest_of_every_tag_it_pushed(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 3, the push side: the engine is replaced (tests/engine pushes to a real registry)."""
    from toolkit.release import registry

    class Image:
        def tag(self, repository: str, tag: str) -> None:
            pass

    monkeypatch.setattr(registry, "sdk_client", lambda: object())
    monkeypatch.setattr(registry, "sdk_image", lambda engine, ref, name: Image())
    monkeypatch.setattr(
        registry,
        "_push_with_retries",
        lambda engine, target, tag, *rest: "sha256:" + tag.rjust(64, "0"),
    )
    options = registry.PushOptions(("registry.example",), "my-org", extra_tags=("ci",))
    pushed = registry.push(catalog, catalog["llama3-8b"], options)
    recorded = names.pushed_digests()
    assert {p.ref: p.digest for p in pushed} == recorded
    assert recorded["registry.example/my-org/llama3-8b:ci"] == "sha256:" + "ci".rjust(64, "0")
    assert (
        kubernetes.Images("registry.example", "my-org", "ci", recorded)
        .ref(catalog, catalog["llama3-8b"])
        .endswith("@sha256:" + "ci".rjust(64, "0"))
    )


def test_replicas_are_a_stateful_set_behind_the_router_deployment(
    user_catalog, tmp_path: Path
) -> None:
    """`replicas: 3`: one pod per replica, each with its own cache claim, a headless Service
    naming each, the router's Deployment sending to those names, the config's Service in front
    of the router; every manifest passes the pinned schemas and kubectl builds the directory."""
    text = builtin_text("llama3-8b").replace("gpus: 1\n", "gpus: 1\nreplicas: 3\n")
    catalog = Catalog.load(user_catalog("llama3-8b.yaml", text))
    files = kubernetes.outputs(catalog, ["llama3-8b"], IMAGES)
    docs = _manifests(files)
    for doc in docs:
        _validate(doc)
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    name = "toolkit-llama3-8b"
    pods = by_name[("StatefulSet", name)]["spec"]
    assert (pods["replicas"], pods["serviceName"]) == (3, f"{name}-replicas")
    assert [c["metadata"]["name"] for c in pods["volumeClaimTemplates"]] == ["cache"]
    assert ("PersistentVolumeClaim", f"{name}-cache") not in by_name, "no claim for one pod"
    assert by_name[("Service", f"{name}-replicas")]["spec"]["clusterIP"] == "None"
    router = by_name[("Deployment", f"{name}-router")]["spec"]["template"]["spec"]
    (container,) = router["containers"]
    assert container["image"] == "registry.example/my-org/router:vllm-router-0.1.17"
    urls = container["args"][container["args"].index("--worker-urls") + 1 :]
    assert urls == [f"http://{name}-{i}.{name}-replicas:8000" for i in range(3)]
    assert "--policy=cache_aware" in container["args"]
    front = by_name[("Service", name)]["spec"]
    assert front["selector"]["app.kubernetes.io/name"] == "vllm-router"
    model_policy = by_name[("NetworkPolicy", name)]["spec"]["ingress"][0]
    assert model_policy["from"] == [
        {
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/instance": name,
                    "app.kubernetes.io/name": "vllm-router",
                }
            }
        }
    ], "the replicas answer only their router"
    assert by_name[("PodDisruptionBudget", name)]["spec"]["maxUnavailable"] == 1
    (tmp_path / "out").mkdir()
    for path, content in files.items():
        (tmp_path / "out" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "out" / path).write_text(content, encoding="utf-8")
    built = subprocess.run(
        [_kubectl(), "kustomize", str(tmp_path / "out" / name)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    with pytest.raises(UsageError) as refused:
        kubernetes.outputs(
            catalog,
            ["llama3-8b"],
            IMAGES,
            None,
            Cluster(autoscale_max=4, prometheus="http://p:9090"),
        )
    assert str(refused.value) == (
        "--autoscale-max scales a one-replica Deployment, and llama3-8b has replicas: 3 behind "
        "a router that knows each; drop --autoscale-max or set replicas: 1."
    )
