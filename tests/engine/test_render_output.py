"""`toolkit render -o DIR` writes output that builds without the toolkit.

The rendered compose file's header says "Run without the toolkit"; this builds demo-text (the
quickest image: torch from the wheelhouse and transformers, about 80 s cold on this machine,
seconds from BuildKit's cache) with Compose from the rendered folder alone, moved away from
where it was rendered, as its compose file describes the build (context, Dockerfile, secrets).
Its Dockerfile bind-mounts wheelhouse/ from the copied context; that every other config's COPY
and bind-mount sources come along too is checked without an engine in tests/test_render.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.engine.conftest import toolkit
from toolkit.host.compose import compose_command

TAG = "toolkit-test/rendered-demo-text:latest"


def test_the_rendered_folder_alone_builds(
    docker: Any, wheelhouse: Path, base_image: str, tmp_path: Path
) -> None:
    rendered = tmp_path / "rendered"
    result = toolkit("render", "demo-text", "-o", str(rendered))
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"rendered 2 files for 1 configs in {rendered}, with their build contexts (1 files)\n"
    )
    alone = Path(shutil.move(rendered, tmp_path / "elsewhere"))
    for wheel in wheelhouse.glob("*.whl"):  # where the rendered wheelhouse/README says to
        shutil.copy2(wheel, alone / "images" / "transformers" / "wheelhouse" / wheel.name)
    # Only the image's name changes, so the test's image never replaces anyone's demo-text.
    override = tmp_path / "name.yaml"
    override.write_text(json.dumps({"services": {"model": {"image": TAG}}}))
    compose = alone / "compose" / "demo-text.yaml"
    args = ["-f", str(compose), "-f", str(override), "build", "--build-arg"]
    try:
        built = subprocess.run(
            [*compose_command(), *args, f"BASE_IMAGE={base_image}"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert built.returncode == 0, built.stdout + built.stderr
        image = docker.images.get(TAG)  # also where a Compose wrapper drops the exit code
        assert image.labels["io.github.model-serving-toolkit.config"] == "demo-text"
    finally:
        subprocess.run(["docker", "image", "rm", "-f", TAG], capture_output=True, check=False)
