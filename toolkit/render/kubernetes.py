"""Kubernetes target: a kustomize directory per config, rendered from the same catalog.

    DIR/<config>/kustomization.yaml     the unit to apply: one config
    DIR/<config>/deployment.yaml    one host: a Deployment (GPU limits, /dev/shm, probes)
    DIR/<config>/leaderworkerset.yaml   `nodes:` > 1: a LeaderWorkerSet (Ray head + workers)
    DIR/<config>/service.yaml       a ClusterIP Service on the config's port
    DIR/<config>/networkpolicy.yaml     the API port from where the user says; a group's own pods
    DIR/<config>/pdb.yaml           a drain waits for a serving pod
    DIR/<config>/pvc.yaml           the model cache (a group: only a shared ReadWriteMany one)
    DIR/<config>/model-pvc.yaml     a local-source config's model directory, to fill by hand
    DIR/<config>/ingress.yaml       only with an Ingress host
    DIR/<config>/scaledobject.yaml  only with autoscaling: KEDA on the queue length
    DIR/kustomization.yaml          only with --top-level (then kept): every config folder in DIR

No API server runs where this is rendered or tested: the manifests are checked offline against
the API schemas of a pinned Kubernetes version and the LeaderWorkerSet CRD (tests/). On a real
cluster run `kubectl apply --dry-run=server -k DIR/<config>` first, then `kubectl apply -k`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.catalog import names
from toolkit.catalog.configs import Catalog, Config
from toolkit.errors import UsageError
from toolkit.plan.memory import DEFAULT_GPU_GIB, plan, weights_gib
from toolkit.protocols import Listing, spec
from toolkit.render import Cluster, Options
from toolkit.render import compose as render
from toolkit.service import hardening, multinode, replicas
from toolkit.service.server import health_test

# The version the tests validate against (kubernetes-validate's bundled schemas); nothing in
# the manifests needs a newer API than apps/v1, networking.k8s.io/v1 and core/v1.
KUBERNETES_VERSION = "1.32.0"
LWS_VERSION = "v0.10.0"  # the LeaderWorkerSet release whose CRD the tests validate against
HF_TOKEN_SECRET = "toolkit-hf-token"  # kubectl create secret generic ... --from-file=token=FILE
API_KEY_SECRET = "toolkit-api-key"  # optional: kubectl create secret generic ... --from-literal
SECRETS_DIR = "/run/secrets"
CACHE_HOME = "/cache/home"
PROBE_PERIOD = 10
HEADER = f"{render.GENERATED_MARK} --target kubernetes"
PREFIX = "toolkit-"
DNS_LABEL_MAX = 63
# Every object's: what it belongs to and what made it.
OURS = {
    "app.kubernetes.io/part-of": "model-serving-toolkit",
    "app.kubernetes.io/managed-by": "toolkit",
}
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


class KubernetesError(UsageError):
    """A config cannot be named for Kubernetes: the user's input (exit 2)."""


@dataclass(frozen=True)
class Images:
    """Where `toolkit push` put the images: REGISTRY/NAMESPACE/<config>:TAG."""

    registry: str
    namespace: str = "toolkit"
    tag: str | None = None  # default: the backend version, the tag every push gives
    digests: Mapping[str, str] = field(default_factory=dict)  # REPOSITORY:TAG -> pushed digest

    def ref(self, catalog: Catalog, config: Config) -> str:
        """REPOSITORY:TAG@DIGEST where `toolkit push` recorded the digest, else REPOSITORY:TAG."""
        tag = self.tag or catalog.backend(config).version
        tagged = f"{names.repository(self.registry, self.namespace, config.name)}:{tag}"
        digest = self.digests.get(tagged)
        return f"{tagged}@{digest}" if digest else tagged

    def pull_policy(self, catalog: Catalog, config: Config) -> str:
        """A digest never moves: pull once. A tag can: ask the registry at every start."""
        return "IfNotPresent" if "@" in self.ref(catalog, config) else "Always"


def literal(value: str) -> str:
    """A value Kubernetes passes on as written: it expands `$(VAR)` in a container's command,
    args and env values and reads `$$` as `$`, so every `$` is doubled."""
    return value.replace("$", "$$")


def resource_name(config: Config) -> str:
    """The config's object name: a DNS label (Services need one), prefixed like compose's.

    A config name (Docker's grammar) ends in a letter or digit, so only its length can fail."""
    name = PREFIX + re.sub(r"[^a-z0-9-]", "-", config.name)
    if len(name) > DNS_LABEL_MAX:
        raise KubernetesError(
            f"config name '{config.name}' makes the Kubernetes name '{name}', {len(name)} "
            f"characters, over the {DNS_LABEL_MAX} of a DNS label; rename the config to at most "
            f"{DNS_LABEL_MAX - len(PREFIX)} characters."
        )
    return name


def _quantity(size: str) -> str:
    """Docker's binary size ('64gb') as a Kubernetes quantity ('64Gi')."""
    return size[:-2] + {"k": "Ki", "m": "Mi", "g": "Gi"}[size[-2]]


def _storage(config: Config) -> str:
    """A claim for the weights with room to spare: 1.1 x their size + 10 GiB (100 Gi unknown)."""
    if config.info is None:
        return "100Gi"
    return f"{math.ceil(weights_gib(config.info) * 1.1) + 10}Gi"


# Host-side sizing, estimates named as such: the API server, tokenizer and Python runtime of one
# server; per GPU, its engine worker process plus vLLM's default --swap-space (4 GiB per GPU).
BASE_GIB = 8
PER_GPU_GIB = 6
BASE_CPUS = 2  # the API server and the scheduler loop
PER_GPU_CPUS = 2  # each GPU's worker process and its share of detokenizing
CPU_ONLY_CPUS = 4  # a CPU config's compute threads: a request, never a limit (limits throttle)
QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$")
UNITS = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
UNITS |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
TOLERATION = re.compile(
    r"^([A-Za-z0-9./_-]+)(?:=([A-Za-z0-9._-]*))?:(NoSchedule|PreferNoSchedule|NoExecute)$"
)
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # a namespace's name
NODE_LABEL = re.compile(r"^([A-Za-z0-9./_-]+)=([A-Za-z0-9._-]*)$")
GPU_TAINT = "nvidia.com/gpu"  # the GPU operator's taint of GPU nodes
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"  # GPU feature discovery's label
PRODUCT_GB = re.compile(r"-([0-9]+)GB(?:-|$)")


def _docker_quantity(size: str) -> str:
    """Compose's memory size ('8g') as a Kubernetes quantity ('8Gi')."""
    return size[:-1] + {"k": "Ki", "m": "Mi", "g": "Gi"}[size[-1]]


def _amount(option: str, value: str) -> float:
    match = QUANTITY.match(value)
    if not match:
        raise UsageError(
            f"{option} '{value}' is not a Kubernetes quantity; write it like 4, 500m or 64Gi."
        )
    return float(match.group(1)) * UNITS.get(match.group(2) or "", 1.0)


def resources(catalog: Catalog, config: Config, cluster: Cluster) -> dict[str, dict[str, Any]]:
    """Requests and limits per pod: the user's, else derived from the descriptor and the model.

    CPU configs get compose's memory limit (config.memory_limit, else the descriptor's
    runtime.cpu_memory_limit) as request and limit. GPU configs request the steady state
    (BASE_GIB + PER_GPU_GIB per GPU) and may use the node's share of the weights above it:
    loading passes them through host memory, and the page cache counts against the limit."""
    backend = catalog.backend(config)
    for option, value in [
        ("--cpu-request", cluster.cpu_request),
        ("--memory-request", cluster.memory_request),
        ("--memory-limit", cluster.memory_limit),
    ]:
        if value is not None:
            _amount(option, value)
    if config.gpus:
        steady = BASE_GIB + PER_GPU_GIB * config.gpus
        staged = math.ceil(weights_gib(config.info) / config.nodes) if config.info else steady
        memory = (f"{steady}Gi", f"{steady + staged}Gi")
        cpus = str(BASE_CPUS + PER_GPU_CPUS * config.gpus)
    else:
        limit = _docker_quantity(config.memory_limit or backend.runtime.cpu_memory_limit)
        memory = (limit, limit)
        cpus = str(CPU_ONLY_CPUS)
    request = cluster.memory_request or memory[0]
    limit = cluster.memory_limit or memory[1]
    if _amount("--memory-request", request) > _amount("--memory-limit", limit):
        raise UsageError(
            f"the memory request {request} of {config.name} is above its limit {limit}; "
            "lower --memory-request or raise --memory-limit."
        )
    requests: dict[str, Any] = {"cpu": cluster.cpu_request or cpus, "memory": request}
    limits: dict[str, Any] = {"memory": limit}
    if config.gpus:
        requests["nvidia.com/gpu"] = config.gpus
        limits["nvidia.com/gpu"] = config.gpus
    return {"requests": requests, "limits": limits}


def _product_gib(product: str) -> float | None:
    """About what vLLM finds free on a GPU whose product label names its size ('-80GB-'):
    scaled as the plan's default (DEFAULT_GPU_GIB on an 80 GB card); None if it names none."""
    match = PRODUCT_GB.search(product)
    return int(match.group(1)) * DEFAULT_GPU_GIB / 80 if match else None


def _check_product(catalog: Catalog, config: Config, product: str) -> None:
    """Refuse a GPU product the plan says the config does not fit on (when both are known)."""
    gib = _product_gib(product)
    if gib is None or config.info is None or not config.gpus:
        return
    try:
        fits = plan(config, catalog.backend(config), gpu_memory_gib=gib).fits
    except UsageError:
        return  # facts too thin to plan with: nothing to hold the product against
    if not fits:
        raise UsageError(
            f"--gpu-product {product} leaves about {gib:.1f} GiB per GPU, too little for "
            f"{config.name} (see toolkit plan {config.name} --gpu-memory {gib:.1f}); name a "
            "larger GPU."
        )


def placement(catalog: Catalog, config: Config, cluster: Cluster) -> dict[str, Any]:
    """Where the pods may run: tolerations, node selector, GPU-product affinity, runtime and
    priority class. The plan assumes a memory size, not a product, so there is no affinity
    unless the user names products; then the plan is held against their memory."""
    tolerations = []
    if config.gpus:
        tolerations.append({"key": GPU_TAINT, "operator": "Exists", "effect": "NoSchedule"})
    for text in cluster.tolerations:
        match = TOLERATION.match(text)
        if not match:
            raise UsageError(
                f"--toleration '{text}' is not KEY[=VALUE]:EFFECT with EFFECT NoSchedule, "
                "PreferNoSchedule or NoExecute; write it like nvidia.com/gpu:NoSchedule."
            )
        key, value, effect = match.groups()
        entry = {"key": key, "operator": "Exists" if value is None else "Equal"}
        tolerations.append(entry | ({} if value is None else {"value": value}) | {"effect": effect})
    selector = {}
    for text in cluster.node_selector:
        match = NODE_LABEL.match(text)
        if not match:
            raise UsageError(
                f"--node-selector '{text}' is not KEY=VALUE; write it like "
                "node.kubernetes.io/instance-type=p5.48xlarge."
            )
        selector[match.group(1)] = match.group(2)
    products = list(cluster.gpu_products) if config.gpus else []
    for product in products:
        if not (product and LABEL_VALUE.match(product)):
            raise UsageError(
                f"--gpu-product '{product}' is not a label value; write it as the GPU operator "
                "labels nodes, e.g. NVIDIA-H100-80GB-HBM3."
            )
        _check_product(catalog, config, product)
    return {
        "tolerations": tolerations,
        "node_selector": selector,
        "gpu_products": products,
        "gpu_product_label": GPU_PRODUCT_LABEL,
        "runtime_class": cluster.runtime_class,
        "priority_class": cluster.priority_class,
    }


def shared_cache(config: Config, cluster: Cluster) -> str | None:
    """The ReadWriteMany class a multi-node group (or a config's replicas) shares one model copy
    on, if the user has one.

    Without one each pod keeps its own claim and downloads its own copy: vLLM's workers read
    their shards from their own filesystem, so a leader-only download would still have to be
    copied to every node."""
    return cluster.shared_storage_class if config.nodes > 1 or config.replicas > 1 else None


def api_sources(cluster: Cluster) -> list[str] | None:
    """Namespaces admitted to the API port; [] for the service's own; None for anywhere."""
    if "*" in cluster.api_from:
        return None
    for namespace in cluster.api_from:
        if not DNS_LABEL.match(namespace):
            raise UsageError(
                f"--api-from '{namespace}' is not a namespace name; name one, or '*' for anywhere."
            )
    return sorted(set(cluster.api_from))


def autoscaling(catalog: Catalog, config: Config, cluster: Cluster) -> dict[str, Any] | None:
    """A KEDA ScaledObject's settings: the queue-length gauge of the backend, if it has one."""
    if cluster.autoscale_max is None:
        if cluster.prometheus:
            raise UsageError("--prometheus goes with --autoscale-max N; add it or drop both.")
        return None
    if not cluster.prometheus:
        raise UsageError(
            "--autoscale-max needs --prometheus URL: the Prometheus that scrapes the servers."
        )
    if config.replicas > 1:
        raise UsageError(
            f"--autoscale-max scales a one-replica Deployment, and {config.name} has replicas: "
            f"{config.replicas} behind a router that knows each; drop --autoscale-max or set "
            "replicas: 1."
        )
    metrics = catalog.backend(config).metrics
    waiting = metrics.names.get("waiting") if metrics else None
    if not waiting:
        return None  # this backend reports no queue length: nothing to scale on
    return {"max": cluster.autoscale_max, "server": cluster.prometheus, "metric": waiting}


def listed_script(listing: Listing) -> str:
    """Python that exits 0 once GET URL lists the served name: an httpGet probe passes on any
    2xx, which proves the server answers, not that it serves this model; it cannot send the API
    key either. Arguments: URL MODEL KEY_ENV."""
    accepted = "model in names"
    if listing.default_tag:
        accepted += f" or model + {json.dumps(listing.default_tag)} in names"
    entries = f"json.load(answer)[{json.dumps(listing.items)}]"
    return f"""\
import json, os, sys, urllib.request
url, model, key_env = sys.argv[1:4]
request = urllib.request.Request(url)
if key_env and os.environ.get(key_env):
    request.add_header("Authorization", "Bearer " + os.environ[key_env])
with urllib.request.urlopen(request, timeout=5) as answer:
    names = [entry[{json.dumps(listing.name)}] for entry in {entries}]
sys.exit(0 if {accepted} else 1)
"""


def readiness_command(catalog: Catalog, config: Config) -> list[str]:
    """Exits 0 once the server lists the served model: what "ready" means for a client.

    The listing script needs python in the image; an image whose health check runs none (Ollama's
    has neither python nor curl) is ready when its health check passes instead."""
    backend = catalog.backend(config)
    if backend.healthcheck[1] != "python3":
        return health_test(config, backend)[1:]
    listing = spec(config.protocol).listing
    url = f"http://127.0.0.1:{backend.container_port}{listing.path}"
    return ["python3", "-c", listed_script(listing), url, config.model, backend.api_key_env or ""]


def _context(
    catalog: Catalog, config: Config, images: Images, ingress_host: str | None
) -> dict[str, Any]:
    base = render.Context(catalog, config).as_dict()
    backend = catalog.backend(config)
    name = resource_name(config)
    selector = {"app.kubernetes.io/instance": name, "app.kubernetes.io/name": config.backend}
    toolkit_labels = {
        key: value
        for key, value in base["labels"].items()
        if key.startswith(names.LABEL_PREFIX) and LABEL_VALUE.match(value)
    }
    labels = {
        **selector,
        "app.kubernetes.io/version": backend.version,
        "app.kubernetes.io/component": "model-server",
        **OURS,
        **toolkit_labels,
    }
    user = backend.run_as_uid
    env = dict(base["env"])
    if user is not None:
        env["HOME"] = CACHE_HOME  # as compose (the image's HOME): caches stay on the volume
    if config.gated:
        env["HF_TOKEN_PATH"] = f"{SECRETS_DIR}/hf_token"
    startup = max(1, math.ceil(config.startup_seconds / PROBE_PERIOD))
    return (
        base
        | {
            "header": f"{HEADER} from {base['source_file']}. Do not edit: edit the config, "
            "then render again.",
            "name": name,
            "image": images.ref(catalog, config),
            "selector": selector,
            "labels": labels,
            "annotations": base["labels"],  # every label, values of any form, as annotations
            "env": {key: literal(value) for key, value in sorted(env.items())},
            "command": [literal(word) for word in base["command"]],
            "leader_script": literal(base["leader_script"]),
            "run_as": user,
            "readiness": readiness_command(catalog, config),
            "liveness": health_test(config, backend)[1:],
            "probe_period": PROBE_PERIOD,
            "startup_failures": startup,
            "shm": _quantity(base["shm_size"]) if base["shm_size"] else None,
            "storage": _storage(config),
            "hf_token_secret": HF_TOKEN_SECRET,
            "api_key_secret": API_KEY_SECRET,
            "secrets_dir": SECRETS_DIR,
            "ingress_host": ingress_host,
            "worker_command": multinode.worker_command("$(LWS_LEADER_ADDRESS)"),
            "ray_port": multinode.RAY_PORT,
        }
    )


def _cluster_context(
    catalog: Catalog, config: Config, images: Images, cluster: Cluster
) -> dict[str, Any]:
    """What the cluster options decide: sizing, placement, storage, policy, scaling."""
    return {
        "pull_policy": images.pull_policy(catalog, config),
        "resources": resources(catalog, config, cluster),
        "place": placement(catalog, config, cluster),
        "shared_class": shared_cache(config, cluster),
        "api_sources": api_sources(cluster),
        "autoscaling": autoscaling(catalog, config, cluster),
        "workload_kind": "LeaderWorkerSet" if config.nodes > 1 else "Deployment",
        "workload_api": "leaderworkerset.x-k8s.io/v1" if config.nodes > 1 else "apps/v1",
    }


def _router_context(config: Config, backend_port: int, images: Images, name: str) -> dict[str, Any]:
    """The router in front of a config's replicas (toolkit/service/replicas.py): its own
    Deployment, sent to each replica by its stable StatefulSet name."""
    service = f"{name}-replicas"
    selector = {"app.kubernetes.io/instance": name, "app.kubernetes.io/name": "vllm-router"}
    workers = [f"http://{name}-{i}.{service}:{backend_port}" for i in range(config.replicas)]
    return {
        "replicas_service": service,
        "router_name": f"{name}-router",
        "router_selector": selector,
        "router_labels": selector
        | {
            "app.kubernetes.io/version": replicas.ROUTER_VERSION,
            "app.kubernetes.io/component": "router",
            **OURS,
            names.label("config"): config.name,
        },
        "router_local_image": replicas.IMAGE,
        "router_image": names.repository(images.registry, images.namespace, "router")
        + ":"
        + replicas.IMAGE_TAG,
        "router_port": replicas.LISTEN_PORT,
        "router_user": hardening.NON_ROOT_UID,
        "router_args": replicas.router_args(config, workers, replicas.DEFAULT_POLICY),
    }


def config_files(
    catalog: Catalog,
    config: Config,
    images: Images,
    ingress_host: str | None = None,
    cluster: Cluster | None = None,
) -> dict[str, str]:
    """The files of one config's kustomize directory, by file name."""
    context = _context(catalog, config, images, ingress_host)
    context |= _cluster_context(catalog, config, images, cluster or Cluster())
    env = render.environment()
    many = config.replicas > 1
    if many:
        backend_port = catalog.backend(config).container_port
        context |= _router_context(config, backend_port, images, context["name"])
    workload = (
        "leaderworkerset.yaml"
        if config.nodes > 1
        else "statefulset.yaml"
        if many
        else "deployment.yaml"
    )
    file_names = [workload, "service.yaml", "networkpolicy.yaml", "pdb.yaml"]
    if many:
        file_names += ["replicas-service.yaml", "router.yaml"]
    if (config.nodes == 1 and not many) or context["shared_class"]:
        file_names.append("pvc.yaml")
    if context["autoscaling"]:
        file_names.append("scaledobject.yaml")
    if config.source.local:
        file_names.append("model-pvc.yaml")
    if ingress_host:
        file_names.append("ingress.yaml")
    files = {n: env.get_template(f"kubernetes/{n}.j2").render(context) for n in file_names}
    files["kustomization.yaml"] = env.get_template("kubernetes/kustomization.yaml.j2").render(
        context | {"resources": file_names}
    )
    return files


def outputs(
    catalog: Catalog,
    selected: list[str] | None,
    images: Images,
    ingress_host: str | None = None,
    cluster: Cluster | None = None,
) -> dict[Path, str]:
    """Every config's files, relative to the output directory: one directory per config."""
    if not selected:
        catalog.check()
    owners: dict[str, str] = {}
    files: dict[Path, str] = {}
    for config_name in selected or list(catalog):
        config = catalog[config_name]
        directory = resource_name(config)
        if directory in owners:
            raise KubernetesError(
                f"configs '{owners[directory]}' and '{config.name}' both become the Kubernetes "
                f"name '{directory}'; rename one of them."
            )
        owners[directory] = config.name
        for file_name, text in config_files(catalog, config, images, ingress_host, cluster).items():
            files[Path(directory) / file_name] = text
    return files


def top_level(folders: list[str]) -> str:
    """DIR/kustomization.yaml: every config folder in DIR, applied together."""
    return (
        render.environment()
        .get_template("kubernetes/kustomization.yaml.j2")
        .render(header=f"{HEADER}: every config folder below.", resources=folders, c=None)
    )


def _rendered_folders(out: Path, ours: list[Path]) -> set[str]:
    """The config folders an earlier rendering left in `out`."""
    return {p.parent.name for p in ours if p.name == "kustomization.yaml" and p.parent != out}


def write(
    catalog: Catalog,
    selected: list[str] | None,
    out: Path | None,
    check: bool,
    registry: str | None,
    namespace: str | None = None,
    tag: str | None = None,
    ingress_host: str | None = None,
    cluster: Cluster | None = None,
) -> list[Path]:
    """`toolkit render --target kubernetes`: check the options, write the kustomize directories.

    Rendering all configs deletes what an earlier rendering wrote there for configs since
    removed; rendering some leaves the other folders as they are. The top-level kustomization
    is written with --top-level, or kept up to date once there: it lists every config folder
    in `out`. A folder holding files the toolkit did not write is refused.
    """
    if check:
        raise UsageError(
            "--check compares the repository's files; drop it with --target kubernetes."
        )
    if out is None:
        raise UsageError("the kubernetes target needs --output DIR: the folder to write to.")
    if not registry:
        raise UsageError(
            "the kubernetes target needs --registry HOST: the registry `toolkit push` "
            "pushed the images to."
        )
    cluster = cluster or Cluster()
    images = Images(registry, namespace or Images.namespace, tag, names.pushed_digests())
    files = outputs(catalog, selected, images, ingress_host, cluster)
    existing = [p for p in out.rglob("*") if p.is_file()] if out.is_dir() else []
    ours = [p for p in existing if render.GENERATED_MARK in p.read_text(errors="replace")[:300]]
    foreign = sorted(set(existing) - set(ours))
    if foreign:
        raise UsageError(
            f"{out} holds files the toolkit did not write ({foreign[0]}); "
            "choose an empty folder or one it rendered before."
        )
    folders = {relative.parts[0] for relative in files}
    if selected:
        folders |= _rendered_folders(out, ours)
    if cluster.top_level or out / "kustomization.yaml" in ours:
        files[Path("kustomization.yaml")] = top_level(sorted(folders))
    if not selected:
        for stale in set(ours) - {out / relative for relative in files}:
            stale.unlink()
    written = []
    for relative, text in files.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return sorted(written)


def run(catalog: Catalog, selected: list[str] | None, options: Options) -> str:
    """`toolkit render --target kubernetes`."""
    files = write(
        catalog,
        selected,
        options.out,
        options.check,
        options.registry,
        options.namespace,
        options.tag,
        options.ingress_host,
        options.cluster,
    )
    return f"rendered {len(files)} files for {len(selected or catalog)} configs in {options.out}"
