"""`toolkit check` before the engine: which configs it checks, and where their twins are.

The check itself runs the image's vLLM in a container: tests/engine/test_vllm.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Run, untwinned
from toolkit.catalog.configs import Catalog
from toolkit.errors import UsageError
from toolkit.lifecycle import check
from toolkit.paths import REPO_ROOT

CATALOG = Catalog.load()


@pytest.mark.parametrize(
    "name", [n for n, c in CATALOG.items() if CATALOG.backend(c).check and c.source.hf]
)
def test_every_checkable_hub_config_finds_its_shipped_twin(name: str) -> None:
    twin = check.twin_path(CATALOG, CATALOG[name])
    assert twin is not None and twin.parent == REPO_ROOT / "configs" / "twins"
    assert twin.name.startswith(CATALOG[name].source.reference.replace("/", "--"))


def test_a_user_configs_twin_lies_beside_it(tmp_path: Path) -> None:
    text = untwinned("me/mine")
    (tmp_path / "mine.yaml").write_text(text)
    catalog = Catalog.load(tmp_path)
    with pytest.raises(UsageError) as missing:
        check.check(catalog, catalog["mine"])
    assert str(missing.value) == (
        f"mine has no config twin in {tmp_path / 'twins'}; put the checkpoint's config.json "
        "there as <owner>--<name>.json (toolkit add keeps one), then check again."
    )
    (tmp_path / "twins").mkdir()
    (tmp_path / "twins" / "me--mine.json").write_text("{}")
    assert check.twin_path(catalog, catalog["mine"]) == tmp_path / "twins" / "me--mine.json"


def test_a_backend_without_checks_is_refused_in_one_sentence(run: Run) -> None:
    result = run("check", "demo-text")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: demo-text runs transformers, which has no start-time check to run without a "
        "GPU; toolkit check runs vLLM's own checks, for vLLM configs.\n"
    )
