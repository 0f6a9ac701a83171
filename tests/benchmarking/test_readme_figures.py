"""Every figure the README quotes from results/ is the one in the committed file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmarks.readme import BLOCK, render_blocks, stale_blocks, unsourced_figures

ROOT = Path(__file__).resolve().parents[2]


def test_the_readmes_result_tables_are_those_the_committed_csvs_give():
    text = (ROOT / "README.md").read_text()
    blocks = list(BLOCK.finditer(text))
    assert blocks, "the Benchmarks section quotes its tables between result markers"
    for block in blocks:
        assert (ROOT / block["path"]).is_file(), block["path"]
        assert "|" in block["body"], f"{block['path']} ({block['regime']}) has no table yet"
    assert stale_blocks(text, ROOT) == []


def test_every_figure_of_the_readme_is_in_a_results_file_its_section_links_to():
    assert unsourced_figures((ROOT / "README.md").read_text(), ROOT) == []


def _results(tmp_path) -> Path:
    frame = pd.DataFrame(
        [
            {
                "regime": "recovery",
                "budget": "params=0.1",
                "method": method,
                "series": series,
                "seeds": 3,
                "test_metric_mean": mean,
                "test_metric_std": 0.001,
                "ci95_low": mean - 0.002,
                "ci95_high": mean + 0.002,
                "autoprune_verdict": "ahead" if method == "lamp" else None,
                "autoprune_p": 0.01 if method == "lamp" else None,
                "wall_seconds": 10.0,
                "trials": 8 if method == "autoprune" else None,
                "provenance": "3 sampler" if method == "autoprune" else None,
            }
            for method, series, mean in (
                ("dense", "reference", 0.9135),
                ("lamp", "unstructured", 0.9001),
                ("autoprune", "search", 0.9042),
            )
        ]
    )
    path = tmp_path / "results" / "t.csv"
    path.parent.mkdir()
    frame.to_csv(path, index=False)
    (tmp_path / "results" / "t.md").write_text("0.9042 0.9001\n")
    return path


def test_a_hand_edited_table_or_figure_is_caught(tmp_path):
    _results(tmp_path)
    empty = (
        "## Benchmarks\n\nSee [t](results/t.md).\n\n"
        "<!-- results: results/t.csv regime=recovery -->\n<!-- /results -->\n\n## Next\n"
    )
    filled = render_blocks(empty, tmp_path)
    assert "| params=0.1 | 0.9135 ± 0.0010 | lamp | 0.9001 ± 0.0010 | 0.9042 ± 0.0010 |" in filled
    assert "ahead (p 0.01) | 3 sampler | 8 |" in filled
    assert stale_blocks(filled, tmp_path) == [] and unsourced_figures(filled, tmp_path) == []
    edited = filled.replace("0.9042 ± 0.0010", "0.9142 ± 0.0010")
    assert stale_blocks(edited, tmp_path) == ["results/t.csv (recovery)"]
    prose = filled.replace("See [t]", "autoprune reaches 0.9242; see [t]")
    assert unsourced_figures(prose, tmp_path) == ["0.9242"]
