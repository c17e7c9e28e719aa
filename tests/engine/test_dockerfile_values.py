"""ENV and LABEL values reach the image verbatim through a real BuildKit build (Compose's)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.test_compose import HOSTILE_PARTS
from toolkit.host.compose import compose_command, last_line
from toolkit.render import compose as render

BASE = "toolkit-local/python:3.11-bookworm"


def test_env_and_label_values_arrive_verbatim(docker: Any, tmp_path: Path) -> None:
    # A Dockerfile cannot hold a newline in a value, and its quoted strings know no `\t`: those
    # two reach the image as the text `\n`, `\t` (every other part arrives as it is).
    parts = [part for part in HOSTILE_PARTS if part not in ("\n", "\t")]
    values = {f"V{i}": f"a{part}b" for i, part in enumerate(parts)}
    values["ALL"] = "".join(parts)
    args = render.environment().filters["instruction_args"]
    (tmp_path / "Dockerfile").write_text(
        f"FROM {BASE}\nENV {args(values, 4)}\nLABEL {args(values, 6)}\n", encoding="utf-8"
    )
    ref = "toolkit-test/dockerfile-values:1"
    spec = {"services": {"m": {"image": ref, "build": {"context": str(tmp_path)}}}}
    (tmp_path / "build.yaml").write_text(render.to_json(spec), encoding="utf-8")
    result = subprocess.run(
        [*compose_command(), "-f", str(tmp_path / "build.yaml"), "build", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, last_line(result)
    try:
        image = docker.images.get(ref)
        env = dict(item.split("=", 1) for item in image.attrs["Config"]["Env"])
        labels = image.attrs["Config"]["Labels"]
    finally:
        docker.images.remove(ref)
    assert {key: env[key] for key in values} == values
    assert {key: labels[key] for key in values} == values
