"""The report's first blocks, from its data: the title, the run, the final model against the dense one.

The words come from here and from :mod:`autoprune.report._prose_search` (the
search's sections); the numbers come from a
:class:`~autoprune.report._data.ReportData`, the renderers in
:mod:`autoprune.report._render` turn the blocks into markdown and HTML.

Example:
    >>> from autoprune.report._data import Comparison
    >>> comparison_table([Comparison("params", 1000, 250, ratio=0.25)], "accuracy").rows[0]["final / dense"]
    '25.0%'
"""

from __future__ import annotations

from autoprune.budgets import LATENCY_MARGIN
from autoprune.final import FinalSummary, LatencyStats
from autoprune.report._data import (
    MISSING_FINAL,
    MISSING_FRONT,
    MISSING_TRIALS,
    Comparison,
    ReportData,
)
from autoprune.report._prose_costs import cost_notes
from autoprune.report._render import Heading, Table, Text

FRONT_COLUMNS = [
    "number",
    "val_metric",
    "cost",
    "params",
    "macs",
    "bytes",
    "granularity",
    "scope",
    "criterion",
    "blocks_removed",
    "inputs_kept",
    "level",
    "seed",
]
MISSING_TEXT = {
    MISSING_TRIALS: "trials.csv (no trial has been exported yet: resume the search, or run "
    "'autoprune report --finalize')",
    MISSING_FINAL: "final/final.json (no final model yet: run 'autoprune report RUN_DIR --finalize')",
    MISSING_FRONT: "a feasible recovered trial (the front is empty)",
}
QUANTITY_NAMES = {
    "params": "parameters (non-zero)",
    "macs": "MACs (dense kernels)",
    "bytes": "bytes on disk",
    "latency_ms": "latency, median ms (measured)",
    "speedup": "speedup (dense / final latency)",
}


def missing_text(data: ReportData) -> list[str]:
    """What the run lacks, in words."""
    return [MISSING_TEXT[item] for item in data.missing]


def _latency_text(stats: LatencyStats) -> str:
    threads = f"{stats.threads} thread{'s' if stats.threads != 1 else ''}"
    return (
        f"{stats.median_ms:.3f} ms (range over {stats.rounds} rounds {stats.min_ms:.3f}-{stats.max_ms:.3f}; "
        f"batch {stats.batch_size}, {threads})"
    )


def title(data: ReportData) -> str:
    return f"autoprune report: {data.run.task} under {', '.join(data.run.budgets)}"


def header_blocks(data: ReportData) -> list:
    """The title, what the run was asked to do, and how far it went."""
    run = data.run
    limits = ", ".join(f"{k} {v:,.6g}" for k, v in run.limits.items())
    request = (
        f"Task `{run.task}`; budget {', '.join(run.budgets)} (limits: {limits}); search space "
        f"`{run.space_name}`; {run.n_trials} trials requested; seed {run.seed}."
    )
    if "latency" in run.limits:
        request += (
            f" The latency limit is aimed at {LATENCY_MARGIN:.0%} under the budget's: a model timed "
            "again moves by 1-2%."
        )
    progress = f"{data.n_complete} trials complete, {data.n_failed} failed"
    if run.search_seconds is not None:
        progress += f"; search wall time {run.search_seconds:,.0f} s"
    if run.sensitivity_seconds is not None:
        progress += f"; sensitivity analysis {run.sensitivity_seconds:.0f} s"
    progress += (
        f". Dense model: validation {run.metric} {run.dense_val_metric:.4f}, test {run.metric} "
        f"{run.dense_test_metric:.4f}."
    )
    return [Heading(title(data), 1), Text(request), Text(progress)]


def _difference_text(difference: float) -> str:
    """A metric's final - dense; a higher final one is not claimed as a gain (see :func:`dense_reference_text`)."""
    return f"within {difference:.4f} (see below)" if difference > 0 else f"{difference:+.4f}"


def comparison_table(rows: list[Comparison], metric: str) -> Table:
    """Final against dense, one row per quantity: a difference for metrics, a ratio for costs."""
    names = {"test_metric": f"test {metric}", "val_metric": f"validation {metric}"}
    out = []
    for row in rows:
        dense, final, changed, ratio = row.dense, row.final, "", ""
        if row.quantity in names:
            changed = _difference_text(row.difference)
        elif row.quantity == "speedup":
            dense, final = (
                f"{row.dense:.2f}x",
                "n/a" if row.final != row.final else f"{row.final:.2f}x",
            )
        else:
            ratio = "n/a" if row.ratio is None else f"{row.ratio:.1%}"
        name = names.get(row.quantity) or QUANTITY_NAMES[row.quantity]
        out.append(
            {
                "": name,
                "dense": dense,
                "final": final,
                "final - dense": changed,
                "final / dense": ratio,
            }
        )
    return Table(out)


def _budget_table(final: FinalSummary) -> Table:
    return Table(
        [
            {
                "budget": c.budget,
                "measured from the saved files": c.value,
                "limit": c.limit,
                "met": "yes" if c.met else "NO",
            }
            for c in final.budget_checks
        ]
    )


def _candidate_table(final: FinalSummary, metric: str) -> Table:
    return Table(
        [
            {
                "trial": c.number,
                **({"start": c.start} if final.from_scratch else {}),
                f"search val {metric}": c.search_val_metric,
                f"final val {metric}": c.val_metric,
                "cost / limit": c.cost,
            }
            for c in final.candidates
        ]
    )


def _choice_text(final: FinalSummary) -> str:
    text = (
        f"Chosen by rule `{final.rule}` among {len(final.candidates)} candidates fine-tuned for "
        f"{final.final_epochs:g} epochs: trial {final.chosen_trial}."
    )
    if final.from_scratch:
        how = "trained from scratch" if final.chosen_start == "scratch" else "fine-tuned"
        text = (
            f"Chosen by rule `{final.rule}` among {len(final.candidates)} candidates, each "
            f"shortlisted policy fine-tuned for {final.final_epochs:g} epochs and also trained from "
            "a fresh initialisation (gradual schedule, the dense model's epochs plus those): "
            f"trial {final.chosen_trial}, {how}."
        )
    return text + " Files: `final/policy.yaml`, `final/model.safetensors`, `final/final.json`."


def _inputs_text(inputs: dict) -> str:
    """Which input features the final model reads, by name when the task gives names."""
    kept = inputs["names"] or [str(i) for i in inputs["kept"]]
    return (
        f"The final model reads {len(kept)} of its {inputs['features']} input features: "
        f"{', '.join(kept)} (columns {', '.join(str(i) for i in inputs['kept'])}). "
        "`load_pruned` gives a model that takes the whole input and reads those columns; "
        "`reduce_inputs(model)` makes it take them alone, in that order (`x[:, kept]`)."
    )


def final_blocks(data: ReportData) -> list:
    """The final model against the dense model, its budgets, and how it was chosen."""
    blocks: list = [Heading("Final model against the dense model")]
    final = data.final
    if final is None:
        text = (
            "No final model yet: the front's candidates have not been fine-tuned fully and tested."
        )
        return [*blocks, Text(text)]
    blocks.append(comparison_table(data.comparison, data.run.metric))
    blocks += cost_notes(data)
    blocks.append(
        Text(
            f"Latency, dense: {_latency_text(final.dense.latency)}; final: "
            f"{_latency_text(final.final.latency)}, measured side by side. The test split was "
            "evaluated once, for the final model only."
        )
    )
    blocks.append(_budget_table(final))
    blocks.append(Text(_choice_text(final)))
    if final.inputs:
        blocks.append(Text(_inputs_text(final.inputs)))
    if data.pinned:
        blocks.append(
            Text(
                f"Trial(s) {', '.join(str(n) for n in data.pinned)} ranked channels globally; their "
                "final fine-tune kept the per-layer channel counts that ranking reaches on the dense "
                "model, the shape whose costs were checked (the policy file lists them per layer)."
            )
        )
    blocks.append(_candidate_table(final, data.run.metric))
    return blocks
