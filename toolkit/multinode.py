"""The Ray cluster of a config that spans hosts (`nodes:` > 1), as vLLM documents it.

The leader starts the Ray head, waits until every node and GPU has joined, then runs the server
(the backend's entrypoint and command, with the config's tensor- and pipeline-parallel sizes); each
worker joins the head and blocks. Only backends whose descriptor says `multi_node` get here.
Both targets use these commands: the LeaderWorkerSet on Kubernetes and the head role on Docker.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from toolkit.backends import Backend
    from toolkit.catalog import Config

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


def leader_script(config: Config, backend: Backend) -> str:
    """A POSIX shell script: Ray head, wait for the whole cluster, then serve; words quoted."""
    serve = shlex.join([*(backend.entrypoint or []), *backend.server_command(config)])
    wait = shlex.join(["python3", "-c", WAIT_SCRIPT, str(config.nodes), str(config.total_gpus)])
    return (
        f"set -eu\nray start --head --port={RAY_PORT} --disable-usage-stats\n{wait}\nexec {serve}\n"
    )


def worker_command(head_address: str) -> list[str]:
    """Join the head's Ray cluster and stay in the foreground (the container's main process)."""
    return ["ray", "start", f"--address={head_address}:{RAY_PORT}", "--block"]
