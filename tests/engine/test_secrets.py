"""Canaries: a gated config built and started with a fake token, a CA bundle and a pip index URL
holding credentials, each searched for everywhere it must not be."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from tests.engine.conftest import leftovers, toolkit
from tests.servers import free_port
from toolkit.catalog import names
from toolkit.catalog.configs import Catalog
from toolkit.render import compose as render

CANARY = "hf_canaryTOKENdoNotLeak0123456789"
CA_CANARY = "canary-ca-bundle-line-7f3a"
INDEX_CANARY = "pipindexcanary9c1e"


def test_token_and_ca_bundle_land_nowhere(
    docker, built: Path, wheelhouse: Path, base_image: str, tmp_path: Path, stopped_after
) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    text = (built / "demo-image.yaml").read_text() + "gated: true\n"
    (catalog / "canary-image.yaml").write_text(text)
    bundle = tmp_path / "ca.pem"
    bundle.write_text(Path("/etc/ssl/certs/ca-certificates.crt").read_text() + f"# {CA_CANARY}\n")
    env = {"HF_TOKEN": CANARY, "HF_TOKEN_FILE": "", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    outputs = []

    build = toolkit(
        "build",
        "canary-image",
        "--wheelhouse",
        str(wheelhouse),
        "--base-image",
        base_image,
        "--ca-bundle",
        str(bundle),
        catalog=catalog,
        env=env,
    )
    assert build.exit_code == 0, build.output
    stopped_after.append(("canary-image", catalog))
    start = toolkit("start", "canary-image", "--port", str(free_port()), catalog=catalog, env=env)
    assert start.exit_code == 0, start.output
    outputs += [
        build.output,
        start.output,
        toolkit("status", "--json", catalog=catalog).output,
        toolkit("logs", "canary-image", catalog=catalog).output,
    ]

    ref = "toolkit/canary-image:0.42.1"
    container = docker.containers.list(
        filters={"label": f"{names.LABEL_PREFIX}.config=canary-image"}
    )[0]
    # The token did reach the server, as a secret file.
    assert container.exec_run("cat /run/secrets/hf_token").output.decode() == CANARY
    assert container.exec_run("printenv HF_TOKEN_PATH").output.decode().strip() == (
        "/run/secrets/hf_token"
    )

    image = docker.images.get(ref)
    layers = b"".join(image.save())
    with tarfile.open(fileobj=io.BytesIO(layers)) as archive:
        members = b"".join(archive.extractfile(m).read() for m in archive if m.isfile())
    catalog_obj = Catalog.load(catalog)
    rendered = render.outputs(catalog_obj, ["canary-image"])
    places = {
        "image layers": members,
        "image config": json.dumps(image.attrs).encode(),
        "image history": json.dumps(image.history()).encode(),
        "container inspect": json.dumps(container.attrs).encode(),
        "rendered files": "".join(rendered.values()).encode(),
        "toolkit output": "".join(outputs).encode(),
    }
    for place, content in places.items():
        assert CANARY.encode() not in content, f"the token leaked into the {place}"
        assert CA_CANARY.encode() not in content, f"the CA bundle leaked into the {place}"
        assert INDEX_CANARY.encode() not in content, f"the index URL leaked into the {place}"

    handed = tmp_path / "cache" / "model-serving-toolkit" / "secrets" / "canary-image.hf_token"
    assert handed.read_text() == CANARY, "HF_TOKEN reached the compose secret as a 0600 file"

    # What runs is managed from its labels alone: no --catalog names canary-image here.
    assert "canary-image" in toolkit("status", env=env).stdout
    assert toolkit("probe", "canary-image", "--json", env=env).exit_code == 0
    assert toolkit("logs", "canary-image", "--tail", "5", env=env).exit_code == 0
    stopped = toolkit("stop", "canary-image", env=env)
    assert (stopped.exit_code, stopped.stdout) == (0, "stopped canary-image\n")
    assert not handed.exists(), "the handed-over token does not outlive the service"
    assert leftovers(docker, "toolkit-canary-image") == []
    docker.images.remove(ref)
