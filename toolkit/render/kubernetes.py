"""Kubernetes target: a kustomize directory per config, rendered from the same catalog.

    DIR/kustomization.yaml          every config below, applied together or one by one
    DIR/<config>/kustomization.yaml
    DIR/<config>/deployment.yaml    one host: a Deployment (GPU limits, /dev/shm, probes)
    DIR/<config>/leaderworkerset.yaml   `nodes:` > 1: a LeaderWorkerSet (Ray head + workers)
    DIR/<config>/service.yaml       a ClusterIP Service on the config's port
    DIR/<config>/pvc.yaml           the model cache (one host; a LeaderWorkerSet claims per pod)
    DIR/<config>/model-pvc.yaml     a local-source config's model directory, to fill by hand
    DIR/<config>/ingress.yaml       only with an Ingress host

No API server runs where this is rendered or tested: the manifests are checked offline against
the API schemas of a pinned Kubernetes version and the LeaderWorkerSet CRD (tests/). On a real
cluster run `kubectl apply --dry-run=server -k DIR/<config>` first, then `kubectl apply -k`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.catalog import names
from toolkit.catalog.configs import Catalog, Config
from toolkit.errors import UsageError
from toolkit.plan.memory import weights_gib
from toolkit.protocols import Listing, spec
from toolkit.render import Options
from toolkit.render import compose as render
from toolkit.service import multinode
from toolkit.service.server import health_test

# The version the tests validate against (kubernetes-validate's bundled schemas); nothing in
# the manifests needs a newer API than apps/v1, networking.k8s.io/v1 and core/v1.
KUBERNETES_VERSION = "1.32.0"
LWS_VERSION = "v0.10.0"  # the LeaderWorkerSet release whose CRD the tests validate against
HF_TOKEN_SECRET = "toolkit-hf-token"  # kubectl create secret generic ... --from-file=token=FILE
API_KEY_SECRET = "toolkit-api-key"  # optional: kubectl create secret generic ... --from-literal
SECRETS_DIR = "/run/secrets"
PROBE_PERIOD = 10
HEADER = f"{render.GENERATED_MARK} --target kubernetes"
PREFIX = "toolkit-"
DNS_LABEL_MAX = 63
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


class KubernetesError(UsageError):
    """A config cannot be named for Kubernetes: the user's input (exit 2)."""


@dataclass(frozen=True)
class Images:
    """Where `toolkit push` put the images: REGISTRY/NAMESPACE/<config>:TAG."""

    registry: str
    namespace: str = "toolkit"
    tag: str | None = None  # default: the backend version, the tag every push gives

    def ref(self, catalog: Catalog, config: Config) -> str:
        tag = self.tag or catalog.backend(config).version
        return f"{names.repository(self.registry, self.namespace, config.name)}:{tag}"


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
        "app.kubernetes.io/part-of": "model-serving-toolkit",
        "app.kubernetes.io/managed-by": "toolkit",
        **toolkit_labels,
    }
    user = backend.run_as_uid
    env = dict(base["env"])
    if user is not None:
        env["HOME"] = "/tmp"  # an arbitrary user has no home directory in these images
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
            "env": dict(sorted(env.items())),
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


def config_files(
    catalog: Catalog, config: Config, images: Images, ingress_host: str | None = None
) -> dict[str, str]:
    """The files of one config's kustomize directory, by file name."""
    context = _context(catalog, config, images, ingress_host)
    env = render.environment()
    workload = "leaderworkerset.yaml" if config.nodes > 1 else "deployment.yaml"
    file_names = [workload, "service.yaml"]
    if config.nodes == 1:
        file_names.append("pvc.yaml")
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
) -> dict[Path, str]:
    """Every file, relative to the output directory: one directory per config and a top one."""
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
        for file_name, text in config_files(catalog, config, images, ingress_host).items():
            files[Path(directory) / file_name] = text
    top = render.environment().get_template("kubernetes/kustomization.yaml.j2")
    files[Path("kustomization.yaml")] = top.render(
        header=f"{HEADER}: every config below.",
        resources=sorted(owners),
        c=None,
    )
    return files


def write(
    catalog: Catalog,
    selected: list[str] | None,
    out: Path | None,
    check: bool,
    registry: str | None,
    namespace: str | None = None,
    tag: str | None = None,
    ingress_host: str | None = None,
) -> list[Path]:
    """`toolkit render --target kubernetes`: check the options, write the kustomize directories.

    Rendering all configs deletes what an earlier rendering wrote there for configs since
    removed; a folder holding files the toolkit did not write is refused.
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
    images = Images(registry, namespace or Images.namespace, tag)
    files = outputs(catalog, selected, images, ingress_host)
    existing = [p for p in out.rglob("*") if p.is_file()] if out.is_dir() else []
    ours = [p for p in existing if render.GENERATED_MARK in p.read_text(errors="replace")[:300]]
    foreign = sorted(set(existing) - set(ours))
    if foreign:
        raise UsageError(
            f"{out} holds files the toolkit did not write ({foreign[0]}); "
            "choose an empty folder or one it rendered before."
        )
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
    )
    return f"rendered {len(files)} files for {len(selected or catalog)} configs in {options.out}"
