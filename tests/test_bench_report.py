"""The bench's reports: JSON from a real run against the no-op server, the HTML drawn from it and
looked at in a real headless browser, the comparison of two runs, and the client's ceiling."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.conftest import Run
from tests.servers import free_port
from toolkit.bench import noop
from toolkit.bench.page import PALETTE


@pytest.fixture(scope="module")
def noop_url() -> Any:
    with noop.running(free_port()) as url:
        yield url


def _bench(run: Run, url: str, out: Path, *args: str) -> dict[str, Any]:
    result = run(
        "bench", "--url", url, "--protocol", "openai-text", "--model", noop.MODEL,
        "--json", str(out), *args,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return dict(json.loads(out.read_text()))


def test_a_sweep_goes_from_idle_to_saturation(run: Run, noop_url: str, tmp_path: Path) -> None:
    doc = _bench(run, noop_url, tmp_path / "s.json", "--sweep", "--sweep-steps", "2",
                 "--requests", "40", "--concurrency", "8", "--output-tokens", "8")  # fmt: skip
    loads = [level["load"] for level in doc["levels"]]
    assert [load["concurrency"] for load in loads] == [1, None, None, 8]
    idle, saturated = doc["levels"][0]["requests_per_s"], doc["levels"][-1]["requests_per_s"]
    # The stepped rates lie between the idle and saturated rates (to the 3 digits kept).
    for load in loads[1:3]:
        assert 0.99 * min(idle, saturated) <= load["rate"] <= 1.01 * max(idle, saturated)
    assert all(level["output_tokens"] == 40 * 8 for level in doc["levels"])
    assert doc["config"]["sweep"] is True and doc["schema"] == "toolkit-bench/3"


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("chromium is not installed: apt-get install -y chromium")
    return found


def _screenshot(html: Path, png: Path) -> Image.Image:
    subprocess.run(
        [
            _chromium(), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--no-first-run",
            "--hide-scrollbars", "--window-size=1280,1400", f"--screenshot={png}", html.as_uri(),
        ],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return Image.open(png).convert("RGB")


def _count(image: Image.Image, colour: str) -> int:
    want = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return sum(1 for pixel in image.get_flattened_data() if pixel == want)


def test_the_html_report_draws_its_plots_in_a_browser(
    run: Run, noop_url: str, tmp_path: Path
) -> None:
    a = _bench(run, noop_url, tmp_path / "a.json", "--rate", "50", "--requests", "60")
    _bench(run, noop_url, tmp_path / "b.json", "--concurrency", "4", "--requests", "60")
    html = tmp_path / "compare.html"
    result = run("bench", "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
                 "--html", str(html))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].split()[:2] == ["RUN", "LOAD"]
    assert [line.split()[0] for line in result.output.splitlines()[1:3]] == ["a", "b"]
    text = html.read_text()
    assert text.count("<svg") == 5
    assert 'aria-label="Latency against throughput (p50)"' in text
    assert not any(ref in text for ref in ("src=", "<link", "href=")), "not self-contained"
    assert json.loads(text.split('id="results">')[1].split("</script>")[0])[0] == a
    image = _screenshot(html, tmp_path / "compare.png")
    # The first two series' strokes (run A, run B) are drawn, in many pixels each.
    assert _count(image, PALETTE[0]) > 500
    assert _count(image, PALETTE[1]) > 500


def test_compare_refuses_a_file_that_is_not_a_result(run: Run, tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"schema": "something-else"}')
    result = run("bench", "compare", str(other), str(other))
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {other} is not a toolkit bench result (toolkit-bench/2 or toolkit-bench/3); "
        "give a file written by toolkit bench --json.\n"
    )


def test_compare_tabulates_every_level_and_what_each_run_ran(
    run: Run, noop_url: str, tmp_path: Path
) -> None:
    """Two real runs against the no-op server; the second's target gets the config, engine
    arguments and image digest that a catalog service's run records (a recording: no engine
    runs here), and the first is rewritten as a /2 result, which compare still reads."""
    a = _bench(run, noop_url, tmp_path / "a.json", "--concurrency", "1", "--requests", "20")
    a["schema"] = "toolkit-bench/2"
    (tmp_path / "a.json").write_text(json.dumps(a))
    b = _bench(run, noop_url, tmp_path / "b.json", "--rate", "40", "--requests", "20")
    b["target"] |= {
        "config": "llama3-8b", "backend": "vllm", "engine_args": ["--max-model-len", "8192"],
        "image": "toolkit/llama3-8b:abc", "image_digest": "sha256:" + "0" * 64,
    }  # fmt: skip
    (tmp_path / "b.json").write_text(json.dumps(b))
    html = tmp_path / "c.html"
    result = run("bench", "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
                 "--html", str(html))  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "RUN", "LOAD", "OK", "REQ/S", "OUT", "TOK/S", "TTFT", "P50", "MS", "E2E", "P50", "MS",
        "PARETO",
    ]  # fmt: skip
    assert [line.split()[:3] for line in lines[1:3]] == [
        ["a", "c=1", "20/20"],
        ["b", "40/s", "20/20"],
    ]
    assert lines[3] == f"a: openai-text {noop.MODEL} at {noop_url}"
    about = (
        f"b: openai-text {noop.MODEL} at {noop_url}; config llama3-8b (vllm); engine args: "
        f"--max-model-len 8192; image sha256:{'0' * 64}"
    )
    assert lines[4] == about
    assert about.removeprefix("b: ") in html.read_text()
    assert f"wrote {html}" == lines[5]


def test_the_pareto_frontier_keeps_the_levels_no_other_beats() -> None:
    from toolkit.bench.report import frontier

    points = [
        (100.0, 50.0, 500.0),  # the lowest latencies
        (200.0, 80.0, 900.0),  # more throughput for more latency
        (150.0, 90.0, 950.0),  # beaten by the one before on all three
        (200.0, 80.0, 900.0),  # a tie is not beaten
        (300.0, None, None),  # nothing answered
    ]
    assert frontier(points) == [True, True, False, True, False]


def test_compare_refuses_options_of_a_run(run: Run, tmp_path: Path) -> None:
    result = run("bench", "compare", "a.json", "b.json", "--rate", "5", "--json", "x.json")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: compare takes JSON files and --html only; drop --rate, --json.\n"
    )


def test_calibrate_saves_a_ceiling_that_later_runs_warn_near(
    run: Run, noop_url: str, tmp_path: Path
) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    result = run("bench", "--calibrate", "--requests", "300", env=env)
    assert result.exit_code == 0, result.output
    saved = tmp_path / "model-serving-toolkit" / "bench-ceiling.json"
    ceiling = json.loads(saved.read_text())
    assert ceiling["requests_per_s"] > 0 and ceiling["output_tokens_per_s"] > 0
    assert result.output.startswith(f"client ceiling: {ceiling['requests_per_s']:g} req/s")
    # A later run at full tilt reads the saved ceiling and warns near it. On a shared machine a
    # second full-tilt run can fall well below the first, so the saved ceiling is cut to a tenth
    # of the measured one: the warning then depends on the file being read, not on the timing.
    saved.write_text(json.dumps({**ceiling, "requests_per_s": ceiling["requests_per_s"] / 10}))
    out = tmp_path / "near.json"
    result = run("bench", "--url", noop_url, "--protocol", "openai-text", "--model", noop.MODEL,
                 "--concurrency", "64", "--requests", "600", "--output-tokens", "16",
                 "--json", str(out), env=env)  # fmt: skip
    [level] = json.loads(out.read_text())["levels"]
    assert any("near this client's ceiling" in w for w in level["warnings"]), level["warnings"]


@pytest.mark.models
def test_openai_image_counts_images_per_size(run: Run, tiny_models: Path, tmp_path: Path) -> None:
    """The project's own diffusers server, in process, with the tiny pipeline."""
    from tests.servers import diffusers_server

    out = tmp_path / "images.json"
    with diffusers_server(tiny_models / "tiny-diffusion") as url:
        result = run("bench", "--url", url, "--protocol", "openai-image", "--model",
                     "Tiny-Diffusion", "--requests", "4", "--warmup", "1", "--size", "64x64",
                     "--size", "32x48", "--json", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    [level] = json.loads(out.read_text())["levels"]
    assert level["completed"] == 4, level["error_examples"]
    assert {size: f["images"] for size, f in level["images"].items()} == {"32x48": 2, "64x64": 2}
    assert all(f["images_per_s"] > 0 for f in level["images"].values())
