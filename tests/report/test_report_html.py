"""The HTML report is well formed, and opens in a real (headless) browser without errors.

The structural check always runs; the browser check needs Debian's ``chromium``
package (``make install`` installs it when run as root) and is skipped without it.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from autoprune.final import finalize
from autoprune.report import build_report
from autoprune.search import search

HEADINGS = [
    "Final model against the dense model",
    "Pareto front",
    "Final model, per layer",
    "Sensitivity",
    "Optimisation history",
]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
PNG = b"\x89PNG\r\n\x1a\n"


class PageStructure(HTMLParser):
    """Open tags, ids, images, table rows and headings of a page, with every mismatch noted."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.ids: list[str] = []
        self.images: list[str] = []
        self.tables: list[list[int]] = []  # cells per row, per table
        self.headings: list[tuple[str, str]] = []
        self.attrs: dict[str, dict[str, str]] = {}  # the last attributes of each tag
        self._heading: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.attrs[tag] = {k: v or "" for k, v in attrs.items()}
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "img":
            self.images.append(attrs.get("src") or "")
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append(0)
        elif tag in ("td", "th") and self.tables and self.tables[-1]:
            self.tables[-1][-1] += int(attrs.get("colspan") or 1)
        elif tag in ("h1", "h2", "h3"):
            self._heading = []
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag in ("h1", "h2", "h3") and self._heading is not None:
            self.headings.append((tag, "".join(self._heading).strip()))
            self._heading = None

    def handle_data(self, data):
        if self._heading is not None:
            self._heading.append(data)


def parse(page: str) -> PageStructure:
    parser = PageStructure()
    parser.feed(page)
    parser.close()
    return parser


def check_structure(page: str, base: Path) -> PageStructure:
    """Assert ``page`` is well formed; returns what was parsed."""
    assert page.lstrip().lower().startswith("<!doctype html>")
    found = parse(page)
    assert found.problems == [] and found.stack == []  # every tag closed, in order
    assert len(found.ids) == len(set(found.ids)), found.ids
    for src in found.images:
        if src.startswith("data:"):
            kind, _, data = src.partition(",")
            assert kind == "data:image/png;base64"
            assert base64.b64decode(data, validate=True)[:8] == PNG
        else:
            assert (base / src).is_file(), src
    for rows in found.tables:
        assert rows and len(set(rows)) == 1, rows  # a header and rows of the same width
    assert [tag for tag, _ in found.headings].count("h1") == 1
    return found


def _write_run(run_dir: Path, trials: list[dict]) -> None:
    """A run directory with ``run.json`` and ``trials.csv`` only: no front, no final model."""
    run_dir.mkdir()
    run = {
        "setup": {
            "task": "t",
            "budgets": ["params=0.1"],
            "space": {"name": "q"},
            "n_trials": 3,
            "seed": 0,
        },
        "limits": {"params": 100.0},
        "dense_costs": {"params": 1000},
        "dense": {"metric": "accuracy", "val_metric": 0.9, "test_metric": 0.89},
    }
    (run_dir / "run.json").write_text(json.dumps(run))
    pd.DataFrame(trials).to_csv(run_dir / "trials.csv", index=False)


@pytest.fixture(scope="module")
def finished_report(tmp_path_factory) -> Path:
    """``report.html`` of a small finished digits-mlp run."""
    out = tmp_path_factory.mktemp("report-html") / "run"
    result = search("digits-mlp", "params=0.3", space="quick", n_trials=4, out=out, progress=False)
    finalize(result, top=1, progress=False)
    return build_report(out)["html"]


def test_report_html_is_well_formed(finished_report):
    found = check_structure(finished_report.read_text(), finished_report.parent)
    assert len(found.images) >= 4  # pareto, sparsity, sensitivity, history
    assert found.tables
    titles = [text for tag, text in found.headings if tag == "h2"]
    assert all(heading in titles for heading in HEADINGS), titles


def test_html_of_an_unfinished_run_is_well_formed(tmp_path):
    row = {
        "feasible": True,
        "fidelity": "confirmed",
        "seed": "",
        "fail_reason": "",
        "fitness": -0.1,
    }
    _write_run(
        tmp_path / "run",
        [
            {**row, "number": 0, "state": "COMPLETE", "val_metric": 0.8, "cost": 0.5},
            {**row, "number": 1, "state": "FAIL", "val_metric": None, "cost": None,
             "fail_reason": "a <b>bold</b> & odd reason"},
        ],
    )  # fmt: skip
    page = build_report(tmp_path / "run")["html"].read_text()
    found = check_structure(page, tmp_path / "run")
    assert "Not in this report yet" in [text for _, text in found.headings]
    assert "a <b>bold</b> & odd reason" not in page  # escaped, not markup


def test_the_structure_check_catches_broken_pages(tmp_path):
    good = "<!DOCTYPE html><html><body><h1>t</h1><p>x</p></body></html>"
    check_structure(good, tmp_path)
    broken = [
        "<!DOCTYPE html><html><body><p>x</body></html>",
        "<!DOCTYPE html><html><body><p id='a'></p><p id='a'></p></body></html>",
        "<!DOCTYPE html><html><body><img src='missing.png'></body></html>",
        "<!DOCTYPE html><html><body><img src='data:image/png;base64,AAAA'></body></html>",
        "<!DOCTYPE html><html><body><table><tr><th>a</th><th>b</th></tr>"
        "<tr><td>1</td></tr></table></body></html>",
    ]
    for page in broken:
        with pytest.raises(AssertionError):
            check_structure(page, tmp_path)


PROBE = """<script>
window.__problems = [];
window.addEventListener("error", (e) => window.__problems.push(
  e.message || ("cannot load " + String(e.target && (e.target.src || e.target.href)).slice(0, 80))), true);
window.addEventListener("load", () => {
  const root = document.documentElement;
  root.dataset.problems = JSON.stringify(window.__problems);
  root.dataset.images = JSON.stringify(Array.from(document.images, (i) => i.complete && i.naturalWidth > 0));
});
</script>"""


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    _chromium() is None,
    reason="chromium is not installed (Debian package 'chromium'; 'make install' as root adds it)",
)
def test_report_opens_in_a_headless_browser_without_errors(finished_report, tmp_path):
    page = finished_report.read_text()
    assert page.count("<head>") == 1
    probed = tmp_path / "report.html"  # the report plus a script that records what went wrong
    probed.write_text(page.replace("<head>", "<head>" + PROBE, 1))
    for figure in (finished_report.parent / "figures").glob("*.png"):  # in case any is linked
        (tmp_path / "figures").mkdir(exist_ok=True)
        shutil.copy(figure, tmp_path / "figures" / figure.name)
    done = subprocess.run(
        [
            _chromium(),
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            probed.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []  # no JavaScript error, no failed resource, nothing logged
    dom = parse(done.stdout)
    root = dom.attrs["html"]
    assert json.loads(root["data-problems"]) == []
    images = json.loads(root["data-images"])
    assert len(images) >= 4 and all(images)  # every image decoded, with a size
    titles = [text for tag, text in dom.headings if tag == "h2"]
    assert all(heading in titles for heading in HEADINGS), titles
    assert [tag for tag, _ in dom.headings].count("h1") == 1
