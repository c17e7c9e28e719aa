"""The docs: the catalog reference is generated and current, its JSON Schema agrees with the
loader, the README names every command, and every relative link resolves."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import jsonschema
import pytest
import yaml

from tests.conftest import Run
from toolkit.catalog.configs import Config
from toolkit.cli.root import cli
from toolkit.paths import REPO_ROOT
from toolkit.render import docs

CONFIG_FILES = sorted(p for p in (REPO_ROOT / "configs").glob("*.yaml") if p.stem[0] != "_")
DOC_FILES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_the_generated_reference_is_current(run: Run) -> None:
    result = run("render", "--check")
    assert result.exit_code == 0, result.stderr
    for path, text in docs.outputs(REPO_ROOT).items():
        assert path.read_text(encoding="utf-8") == text, path


def test_a_stale_reference_fails_the_check_naming_it(run: Run, tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    assert run("render", "-o", str(tmp_path)).exit_code == 0
    assert run("render", "--check", "-o", str(tmp_path)).exit_code == 0
    reference = tmp_path / "docs" / "catalog.md"
    reference.write_text(reference.read_text().replace("GPUs per node", "GPUs"))
    result = run("render", "--check", "-o", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr == (
        "error: 1 generated file(s) differ from the catalog (docs/catalog.md); "
        "run 'toolkit render' and commit the result.\n"
    )
    (tmp_path / "docs" / "catalog.schema.json").unlink()
    assert "docs/catalog.schema.json" in run("render", "--check", "-o", str(tmp_path)).stderr


def test_every_config_field_is_in_the_reference() -> None:
    text = (REPO_ROOT / "docs" / "catalog.md").read_text(encoding="utf-8")
    models: list[type] = [Config]
    for model in models:
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            if model is Config and name == "name":
                assert "| `name` |" not in text
                continue
            assert field.description, f"{model.__name__}.{name} has no description"
            assert f"| `{name}` |" in text, name
            nested = [
                t
                for t in (field.annotation, *getattr(field.annotation, "__args__", ()))
                if isinstance(t, type) and hasattr(t, "model_fields")
            ]
            models += [t for t in nested if t not in models]
    assert len(models) == 3, "Config, Source and ModelInfo"


def _schema() -> dict[str, object]:
    schema: dict[str, object] = json.loads(
        (REPO_ROOT / "docs" / "catalog.schema.json").read_text(encoding="utf-8")
    )
    return schema


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.stem)
def test_the_json_schema_takes_every_shipped_config(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), _schema())


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        ({"colour": "blue"}, "colour"),
        ({"name": "llama3-8b"}, "name"),
        ({"source": {"hf": "org/model", "branch": "main"}}, "branch"),
        ({"env": {"1BAD": "x"}}, "1BAD"),
    ],
)
def test_the_json_schema_refuses_an_unknown_key(edit: dict[str, object], where: str) -> None:
    data = yaml.safe_load((REPO_ROOT / "configs" / "llama3-8b.yaml").read_text(encoding="utf-8"))
    with pytest.raises(jsonschema.ValidationError, match=where):
        jsonschema.validate({**data, **edit}, _schema())


def test_the_readme_table_lists_every_command() -> None:
    ctx = click.Context(cli)
    commands = cli.list_commands(ctx)
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `toolkit ([a-z-]+)[^`]*` \|", readme, flags=re.MULTILINE)
    assert sorted(set(rows)) == sorted(commands)


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_every_relative_link_resolves(doc: Path) -> None:
    text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.DOTALL)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        if not (doc.parent / path).exists():
            broken.append(target)
    assert not broken, f"{doc.name}: links that lead nowhere: {broken}"
