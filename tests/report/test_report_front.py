"""What the user reads: the front across budgets, honest costs, a fair dense reference, structure beside the pick."""

from __future__ import annotations

import dataclasses
import re
import shlex

import pandas as pd
import pytest

from autoprune.final import finalize
from autoprune.report import build_report, collect_report_data
from autoprune.report._data import final_comparison
from autoprune.report._front import best_structured, pick_command
from autoprune.report._prose import final_blocks
from autoprune.report._prose_costs import SPARSE_NOT_FASTER
from autoprune.report._prose_search import front_blocks
from autoprune.report._render import to_markdown
from autoprune.search import SearchOptions, search


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished digits-mlp run in the quick space (levels 1.0 and 0.6, unstructured only) and its report."""
    out = tmp_path_factory.mktemp("front") / "run"
    result = search(
        "digits-mlp",
        "params=0.3",
        space="quick",
        n_trials=4,
        out=out,
        progress=False,
        options=SearchOptions(sensitivity=False),
    )
    finalize(result, top=1, progress=False)
    build_report(out)
    return out


def _markdown(data) -> str:
    return to_markdown(final_blocks(data), data.run_dir)


def _front_rows(md: str) -> list[str]:
    """The rows of the report's front table (header and rule left out)."""
    section = md.split("## Pareto front", 1)[1].split("![", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ")][1:]


def test_front_runs_below_the_budget_and_every_row_has_its_pick_command(run):
    from autoprune.cli import main

    md = (run / "report.md").read_text()
    data = collect_report_data(run)
    rows = _front_rows(md)
    assert len(rows) == len(data.front) + 1 and rows[-1].startswith("| dense |")
    costs = {}
    for line in rows[:-1]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        number, cost = int(cells[0]), float(cells[2])
        costs[number] = cost
        assert f"`autoprune pick {run} --trial {number}`" in line
        assert ("final model" in line) == (number == data.final.chosen_trial)
    assert min(costs.values()) < 0.8 and max(costs.values()) > 0.9  # below the budget, up to it
    page = (run / "report.html").read_text()
    assert f"<code>autoprune pick {run} --trial" in page
    cheapest = min(costs, key=costs.get)  # the command as printed makes that trade-off's model
    command = re.search(rf"`(autoprune pick [^`]* --trial {cheapest})`", md).group(1)
    assert main([*shlex.split(command)[1:], "--quiet"]) == 0
    assert (run / "picks" / f"trial-{cheapest}" / "model.safetensors").is_file()


def test_pick_command_names_the_run_as_given():
    assert pick_command("results/runs/a b", 3) == "autoprune pick 'results/runs/a b' --trial 3"


def test_costs_are_the_dense_kernel_ones_with_the_measured_speedup(run):
    data = collect_report_data(run)
    rows = {r.quantity: r for r in data.comparison}
    final = data.final
    assert rows["macs"].final == rows["macs"].dense  # unstructured: dense kernels run every MAC
    speedup = final.dense.latency.median_ms / final.final.latency.median_ms
    assert rows["speedup"].final == pytest.approx(speedup)
    md = (run / "report.md").read_text()
    assert f"| MACs (dense kernels) | {final.dense.macs:,} | {final.final.macs:,} |" in md
    assert f"| speedup (dense / final latency) | 1.00x | {speedup:.2f}x |" in md
    assert "| bytes on disk |" in md and "| latency, median ms (measured) |" in md
    assert (SPARSE_NOT_FASTER in md) == (speedup < 1.1)  # measured: the machine decides


def _with_latency(data, final_ms: float, final_bytes: int | None = None):
    final = data.final
    row = dataclasses.replace(
        final.final,
        latency=dataclasses.replace(final.final.latency, median_ms=final_ms),
        bytes=final.final.bytes if final_bytes is None else final_bytes,
    )
    final = dataclasses.replace(final, final=row)
    return dataclasses.replace(data, final=final, comparison=final_comparison(final))


def test_a_smaller_model_that_is_not_faster_says_why(run):
    data = collect_report_data(run)
    dense_ms, dense_bytes = data.final.dense.latency.median_ms, data.final.dense.bytes
    assert SPARSE_NOT_FASTER in _markdown(_with_latency(data, dense_ms / 1.05))
    assert SPARSE_NOT_FASTER not in _markdown(_with_latency(data, dense_ms / 1.5))  # faster
    not_smaller = _with_latency(data, dense_ms, final_bytes=dense_bytes)
    assert SPARSE_NOT_FASTER not in _markdown(not_smaller)
    slow = _with_latency(data, dense_ms)
    channels_only = [{**r, "nonzero_params": r["params_after"]} for r in slow.final.final.layers]
    structured = dataclasses.replace(
        slow.final, final=dataclasses.replace(slow.final.final, layers=channels_only)
    )  # nothing sparse: the sentence's advice would not apply
    assert SPARSE_NOT_FASTER not in _markdown(dataclasses.replace(slow, final=structured))


def test_no_gain_over_the_dense_model_is_claimed(run):
    data = collect_report_data(run)
    md = (run / "report.md").read_text()
    assert "over dense" not in md and "over the dense" not in md
    final = data.final
    better = dataclasses.replace(final, test_metric=final.dense.test_metric + 0.01)
    better_md = _markdown(
        dataclasses.replace(data, final=better, comparison=final_comparison(better))
    )
    epochs = f"{data.run.dense_epochs:g}"
    assert f"within 0.0100 of the dense model's {final.dense.test_metric:.4f}" in better_md
    assert (
        f"trained for {epochs} epochs; the pruned model had {final.final_epochs:g} more epochs "
        "of fine-tuning" in better_md
    )
    assert "+0.0100" not in better_md and "over dense" not in better_md
    worse = dataclasses.replace(final, test_metric=final.dense.test_metric - 0.02)
    worse_md = _markdown(dataclasses.replace(data, final=worse, comparison=final_comparison(worse)))
    assert "| -0.0200 |" in worse_md and "within" not in worse_md.split("| validation")[0]


def _structured_trials(chosen: int) -> pd.DataFrame:
    rows = [
        # number, fidelity, granularity, feasible, val_metric, cost
        (chosen, "recovered", "unstructured", True, 0.96, 1.0),
        (20, "confirmed", "structured", True, 0.95, 0.9),  # better, but one-shot only
        (21, "recovered", "structured", True, 0.90, 0.8),
        (22, "recovered", "structured", True, 0.88, 0.6),
        (23, "recovered", "structured", False, 0.99, 1.4),  # over budget
    ]
    trials = pd.DataFrame(
        rows, columns=["number", "fidelity", "granularity", "feasible", "val_metric", "cost"]
    )
    return trials.assign(state="COMPLETE", params=[5000, 4600, 4100, 3000, 7000], macs=12000)


def test_the_best_structured_candidate_stands_beside_the_pick(run):
    data = collect_report_data(run)
    md = (run / "report.md").read_text()
    assert data.structured is None  # the quick space is unstructured
    assert "structured candidate" not in md
    trials = _structured_trials(data.final.chosen_trial)
    best = best_structured(trials)
    assert int(best["number"]) == 21  # recovered first, then the highest metric, feasible only
    assert int(best_structured(trials[trials.fidelity != "recovered"])["number"]) == 20
    assert best_structured(trials[trials.granularity == "unstructured"]) is None
    # a candidate whose measured latency missed the budget is not offered
    assert int(best_structured(trials, frozenset({21}))["number"]) == 22
    text = _markdown(dataclasses.replace(data, trials=trials, structured=best))
    line = next(p for p in text.split("\n\n") if p.startswith("Best structured candidate"))
    assert "trial 21 (fine-tuned)" in line and "0.9000 at cost / limit 0.8000" in line
    assert f"the pick, trial {data.final.chosen_trial}" in line
    assert f"`autoprune pick {run} --trial 21`" in line


def test_the_front_latency_table_shows_the_latency_models_error(run):
    from autoprune.final._summary import FrontLatency

    data = collect_report_data(run)
    measured = [
        FrontLatency(
            number=n,
            estimated_ms=ms,
            measured_ms=10.0,
            measured_vs_dense=0.5,
            limit_ms=12.0,
            met=True,
        )
        for n, ms in ((1, 11.0), (2, 9.0))
    ]
    final = dataclasses.replace(data.final, front_latency=measured)
    info = dataclasses.replace(data.run, latency_errors={"table": 0.04, "macs": 0.15})
    blocks = front_blocks(dataclasses.replace(data, final=final, run=info), run / "pareto.png")
    md = to_markdown(blocks, run)
    assert "| +10.0% |" in md and "| -10.0% |" in md  # each candidate: estimated / measured - 1
    assert "per-layer latency table" in md
    assert "mean error on held-out variants 4.0% (a linear model of MACs: 15.0%)" in md
    assert "On the 2 front candidates measured below: 10.0%." in md


def test_a_narrowed_front_candidate_is_shown_and_kept_out_of_the_models_error(run):
    from autoprune.final._summary import FrontLatency

    data = collect_report_data(run)
    measured = [
        FrontLatency(1, 11.0, 10.0, 0.5, 12.0, True),
        FrontLatency(2, 13.0, 10.0, 0.5, 12.0, True, tightened=0.11),
    ]
    final = dataclasses.replace(data.final, front_latency=measured)
    info = dataclasses.replace(data.run, latency_errors={"table": 0.04, "macs": 0.15})
    blocks = front_blocks(dataclasses.replace(data, final=final, run=info), run / "pareto.png")
    md = to_markdown(blocks, run)
    assert "Trial 2 measured over the budget and was narrowed to fit" in md
    assert "kept widths times 0.89" in md and "| 11.0% |" in md  # the "narrowed by" column
    assert "On the 1 front candidates measured below: 10.0%." in md  # trial 1's error alone
