"""The report's blocks about the search: front, per-layer table, sensitivity, history, failures.

Example:
    >>> from autoprune.report._render import to_markdown
    >>> from pathlib import Path
    >>> print(to_markdown(missing_blocks(["front"]), Path(".")), end="")
    ## Not in this report yet
    <BLANKLINE>
    a feasible recovered trial (the front is empty).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from autoprune.report._data import ReportData
from autoprune.report._figures import Figures
from autoprune.report._front import pick_command
from autoprune.report._prose import FRONT_COLUMNS, MISSING_TEXT
from autoprune.report._render import Heading, Image, Table, Text

PARETO_CAPTION = (
    "Pareto plot: recovered (front, numbered, and dominated), one-shot and over-budget trials; the budget "
    "(cost / limit 1), the dense model, the seed policies and the final model marked"
)
DENSE_COLUMNS = {
    "params": "params",
    "macs": "macs",
    "bytes": "bytes",
}  # front column -> run.json dense_costs


def _dense_row(data: ReportData) -> dict:
    """The dense model as the front table's last row: the reference every trade-off gave up from."""
    costs = data.run.dense_costs
    row = {"number": "dense", "val_metric": data.run.dense_val_metric, "pick": "reference"}
    if data.pareto is not None:
        row["cost"] = data.pareto.dense_cost
    row.update({c: costs[k] for c, k in DENSE_COLUMNS.items() if costs.get(k) is not None})
    return row


def _any_text(column: pd.Series) -> bool:
    """Whether any cell of ``column`` holds a non-empty text (empty cells read back as NaN)."""
    return bool(column.dropna().astype(str).str.len().gt(0).any())


def front_table(data: ReportData) -> Table:
    """The front, cheapest first, each row with the command that makes it a final model; then the dense model."""
    columns = [c for c in FRONT_COLUMNS if c in data.front]
    if "blocks_removed" in columns and not _any_text(data.front["blocks_removed"]):
        columns.remove("blocks_removed")  # a search without depth
    if "inputs_kept" in columns and data.front["inputs_kept"].isna().all():
        columns.remove("inputs_kept")  # every input feature kept
    chosen = data.final.chosen_trial if data.final is not None else None
    rows = []
    for row in data.front[columns].to_dict(orient="records"):
        number = int(row["number"])
        if "inputs_kept" in row and pd.isna(row["inputs_kept"]):
            row["inputs_kept"] = "all"
        row["pick"] = "final model" if number == chosen else ""
        row["get this trade-off"] = f"`{pick_command(data.run_dir, number)}`"
        rows.append(row)
    rows.append(_dense_row(data))
    return Table(rows, columns=[*columns, "pick", "get this trade-off"])


def _front_text(data: ReportData) -> Text:
    cost = data.front["cost"]
    return Text(
        f"Feasible, fine-tuned, non-dominated trials over (validation {data.run.metric}, cost / limit of "
        f"the first budget), cheapest first: the search keeps candidates below the budget, so the front "
        f"runs from cost / limit {cost.min():.2f} to {cost.max():.2f} (1 is the budget). The last row is "
        "the dense model. Any row becomes a final model (full fine-tune, test, saved files measured) "
        "with its command."
    )


LATENCY_MODELS = {
    "table": "the per-layer latency table (each layer timed alone at the widths considered), "
    "calibrated on measured variants",
    "macs": "a linear model of per-layer MACs fitted on measured variants",
}


def latency_model_text(errors: dict, measured: list) -> str:
    """Which latency model the search used, its held-out error and its error on the front.

    >>> latency_model_text({"table": 0.05, "macs": 0.12}, [])
    'The search estimated latency with the per-layer latency table (each layer timed alone at the widths considered), calibrated on measured variants; mean error on held-out variants 5.0% (a linear model of MACs: 12.0%).'
    """
    if not errors:
        return ""
    used = next(iter(errors))
    text = f"The search estimated latency with {LATENCY_MODELS[used]}; mean error on held-out variants "
    text += f"{errors[used]:.1%}"
    others = [
        f"{'a linear model of MACs' if k == 'macs' else k}: {v:.1%}"
        for k, v in errors.items()
        if k != used
    ]
    text += f" ({'; '.join(others)})." if others else "."
    if measured:
        error = sum(abs(r.estimated_ms / r.measured_ms - 1) for r in measured) / len(measured)
        text += f" On the {len(measured)} front candidates measured below: {error:.1%}."
    return text


def _front_latency_blocks(data: ReportData) -> list:
    measured = data.final.front_latency
    as_searched = [r for r in measured if not r.tightened]
    narrowed = "".join(
        f" Trial {r.number} measured over the budget and was narrowed to fit: its kept widths "
        f"times {1 - r.tightened:.2f}, found by bisection on measured latency (its row shows the "
        "narrowed model; the error column the searched one's estimate against it)."
        for r in measured
        if r.tightened
    )
    text = Text(
        "Latency of every front candidate, estimated by the latency model during the search and "
        "measured after it (median of 3 interleaved rounds with the dense model). "
        + latency_model_text(data.run.latency_errors, as_searched)
        + narrowed
    )
    rows = [
        {
            "trial": r.number,
            "estimated ms": r.estimated_ms,
            "measured ms": r.measured_ms,
            "error": f"{r.estimated_ms / r.measured_ms - 1:+.1%}",
            "measured / dense": r.measured_vs_dense,
            "limit ms": r.limit_ms,
            "met": "yes" if r.met else "NO",
            "narrowed by": f"{r.tightened:.1%}" if r.tightened else "",
        }
        for r in measured
    ]
    return [text, Table(rows)]


def front_blocks(data: ReportData, pareto: Path | None) -> list:
    """The Pareto front table, its measured latency, the Pareto plot and the trial categories."""
    blocks: list = [Heading("Pareto front")]
    if not data.has_front:
        blocks.append(Text("No feasible fine-tuned trial yet, so no front."))
    else:
        blocks.append(_front_text(data))
        blocks.append(front_table(data))
        if data.final is not None and data.final.front_latency:
            blocks += _front_latency_blocks(data)
    if data.pareto is not None:
        blocks.append(Image(pareto, PARETO_CAPTION))
        counts = sorted(data.pareto.category_counts.items())
        blocks.append(Text("Trials by category: " + ", ".join(f"{k} {v}" for k, v in counts) + "."))
    return blocks


def layer_blocks(data: ReportData, sparsity: Path | None) -> list:
    """The final model per layer: the figure and the table."""
    if data.final is None:
        return []
    rows = [
        {
            "layer": r["layer"],
            "granularity": r["granularity"],
            "weights removed": r["sparsity"],
            "channels removed": r["channel_ratio"],
            "params before": r["params_before"],
            "non-zero params": r["nonzero_params"],
        }
        for r in data.final.final.layers
    ]
    return [
        Heading("Final model, per layer"),
        Image(sparsity, "Weights and channels removed per layer"),
        Table(rows),
    ]


def sensitivity_blocks(data: ReportData) -> list:
    """Each sensitivity analysis's curves and ranking, or a word that it was off."""
    blocks: list = [Heading("Sensitivity")]
    for section in data.sensitivity:
        blocks.append(Image(section.figure, f"Sensitivity curves ({section.granularity})"))
        if section.ranking is not None:
            blocks.append(Table(section.ranking.to_dict(orient="records")))
    if not data.sensitivity:
        blocks.append(Text("The sensitivity analysis was off for this run."))
    return blocks


def history_blocks(data: ReportData, history: Path | None) -> list:
    """The optimisation history figure and the failed trials with their reasons."""
    blocks: list = [Heading("Optimisation history")]
    if history is not None:
        blocks.append(Image(history, "Validation metric by trial and the best feasible so far"))
    if data.failed:
        blocks.append(Heading("Failed trials"))
        blocks.append(Table([{"trial": f.number, "reason": f.reason} for f in data.failed]))
    return blocks


def missing_blocks(missing: list[str]) -> list:
    """What the run lacks (``missing``: :attr:`ReportData.missing`), or nothing."""
    if not missing:
        return []
    return [
        Heading("Not in this report yet"),
        Text("; ".join(MISSING_TEXT[item] for item in missing) + "."),
    ]


def search_blocks(data: ReportData, figures: Figures) -> list:
    """Every block after the final model's section."""
    return [
        *front_blocks(data, figures.pareto),
        *layer_blocks(data, figures.sparsity),
        *sensitivity_blocks(data),
        *history_blocks(data, figures.history),
        *missing_blocks(data.missing),
    ]
