"""`make test-unit` (-m "not engine and not models") needs no torch stack, and stays so.

pytest imports every test module before it deselects by marker, so a module that imports torch,
diffusers or transformers at module level breaks the light run on a machine without the `models`
extra, whatever its marks; and a test that makes the tiny models without the `models` mark fails
there. Both are checked by collecting in a fresh interpreter, where nothing is imported yet.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from toolkit.paths import REPO_ROOT

HEAVY = ["torch", "diffusers", "transformers", "accelerate"]

COLLECT = """
import json, sys
import pytest

heavy, out = json.loads(sys.argv[1]), sys.argv[2]

class Record:
    def pytest_collection_finish(self, session):
        imported = sorted({name.split(".")[0] for name in sys.modules} & set(heavy))
        makers = [i.nodeid for i in session.items if "tiny_models" in i.fixturenames]
        with open(out, "w") as f:
            json.dump({"imported": imported, "tiny_models": makers}, f)

code = pytest.main(
    ["--collect-only", "-q", "-p", "no:cacheprovider", "-m", "not engine and not models"],
    plugins=[Record()],
)
sys.exit(int(code))
"""


def test_the_light_tests_collect_without_the_torch_stack(tmp_path: Path) -> None:
    out = tmp_path / "collected.json"
    collected = subprocess.run(
        [sys.executable, "-c", COLLECT, json.dumps(HEAVY), str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    found = json.loads(out.read_text())
    assert found["imported"] == [], "a test module imports the torch stack at module level"
    assert found["tiny_models"] == [], "these tests make the tiny models but lack the models mark"
