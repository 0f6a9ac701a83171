"""Build ``report.md`` and ``report.html`` of a run directory from its files alone.

Every number in the report is read from the run's files (``run.json``,
``trials.csv``, ``front.csv``, ``sensitivity/*/ranking.csv`` and
``final/final.json``), never typed in. A run with no finished trial, no
feasible trial or no final model yet is reported as far as it goes, with
what is missing said plainly.

Example:
    >>> # paths = build_report("results/runs/fashion-cnn-params0.1")
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from autoprune._io import read_json, write_text
from autoprune.errors import RunError
from autoprune.report._front import classify, seed_rows
from autoprune.report._plots import history_plot, pareto_plot, sparsity_plot
from autoprune.report._render import Heading, Image, Table, Text, to_html, to_markdown

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
    "schedule",
    "seed",
]


def _read_csv(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        frame = pd.read_csv(path, keep_default_na=True)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    for column in (
        "seed",
        "fail_reason",
        "fidelity",
        "granularity",
        "scope",
        "criterion",
        "schedule",
    ):
        if column in frame:
            frame[column] = (
                frame[column].astype(object).where(frame[column].notna(), "").astype(str)
            )
    if "feasible" in frame:
        frame["feasible"] = frame["feasible"].astype(bool)
    return frame


def _pct(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"


def _latency_text(stats: dict) -> str:
    return (
        f"{stats['median_ms']:.3f} ms (range over {stats['rounds']} rounds {stats['min_ms']:.3f}-{stats['max_ms']:.3f}; "
        f"batch {stats['batch_size']}, {stats['threads']} thread{'s' if stats['threads'] != 1 else ''})"
    )


def collect_blocks(run_dir: Path) -> tuple[list, list[str]]:
    """The report's blocks, and the list of what is missing."""
    run_path = run_dir / "run.json"
    if not run_path.is_file():
        raise RunError(
            f"{run_dir} is not a run directory: it has no run.json (start one with 'autoprune search')."
        )
    run = read_json(run_path)
    setup = run["setup"]
    missing: list[str] = []
    trials = _read_csv(run_dir / "trials.csv")
    front = _read_csv(run_dir / "front.csv")
    final_path = run_dir / "final" / "final.json"
    final = read_json(final_path) if final_path.is_file() else None
    figures = run_dir / "figures"
    dense = run.get("dense", {})
    metric = dense.get("metric", "metric")
    budgets = ", ".join(setup["budgets"])
    blocks: list = [Heading(f"autoprune report: {setup['task']} under {budgets}", 1)]
    blocks.append(
        Text(
            f"Task `{setup['task']}`; budget {budgets} (limits: "
            + ", ".join(f"{k} {v:,.6g}" for k, v in run.get("limits", {}).items())
            + "); "
            f"search space `{setup['space'].get('name', '?')}`; {setup['n_trials']} trials requested; seed {setup['seed']}."
        )
    )
    if trials is None:
        missing.append(
            "trials.csv (no trial has been exported yet: resume the search, or run 'autoprune report --finalize')"
        )
        trials = pd.DataFrame()
    complete = trials[trials["state"] == "COMPLETE"] if not trials.empty else trials
    failed = trials[trials["state"] == "FAIL"] if not trials.empty else trials
    wall = run.get("search_seconds")
    blocks.append(
        Text(
            f"{len(complete)} trials complete, {len(failed)} failed"
            + (f"; search wall time {wall:,.0f} s" if wall is not None else "")
            + (
                f"; sensitivity analysis {sum(run.get('sensitivity_seconds', {}).values()):.0f} s"
                if run.get("sensitivity_seconds")
                else ""
            )
            + f". Dense model: validation {metric} {dense.get('val_metric', math.nan):.4f}, test {metric} "
            f"{dense.get('test_metric', math.nan):.4f}."
        )
    )

    blocks.append(Heading("Final model against the dense model"))
    if final is None:
        missing.append(
            "final/final.json (no final model yet: run 'autoprune report RUN_DIR --finalize')"
        )
        blocks.append(
            Text(
                "No final model yet: the front's candidates have not been fine-tuned fully and tested."
            )
        )
    else:
        d, f = final["dense"], final["final"]

        def metric_row(name, dense, final_value):
            return {
                "": name,
                "dense": dense,
                "final": final_value,
                "final - dense": f"{final_value - dense:+.4f}",
                "final / dense": "",
            }

        def cost_row(name, dense, final_value):
            return {
                "": name,
                "dense": dense,
                "final": final_value,
                "final - dense": "",
                "final / dense": _pct(final_value, dense),
            }

        rows = [
            metric_row(f"test {metric}", d["test_metric"], final["test_metric"]),
            metric_row(f"validation {metric}", d["val_metric"], final["val_metric"]),
            cost_row("parameters (non-zero)", d["params"], f["params"]),
            cost_row("MACs (non-zero)", d["macs"], f["macs"]),
            cost_row("bytes on disk", d["bytes"], f["bytes"]),
            cost_row("latency, median ms", d["latency"]["median_ms"], f["latency"]["median_ms"]),
        ]
        blocks.append(Table(rows))
        blocks.append(
            Text(
                f"Latency, dense: {_latency_text(d['latency'])}; final: {_latency_text(f['latency'])}, "
                "measured side by side. The test split was evaluated once, for the final model only."
            )
        )
        blocks.append(
            Table(
                [
                    {
                        "budget": c["budget"],
                        "measured from the saved files": c["value"],
                        "limit": c["limit"],
                        "met": "yes" if c["met"] else "NO",
                    }
                    for c in final["budget_checks"]
                ]
            )
        )
        blocks.append(
            Text(
                f"Chosen by rule `{final['rule']}` among {len(final['candidates'])} candidates fine-tuned for "
                f"{final['final_epochs']:g} epochs: trial {final['chosen_trial']}. Files: `final/policy.yaml`, "
                "`final/model.safetensors`, `final/final.json`."
            )
        )
        pinned = [str(c["number"]) for c in final["candidates"] if c.get("pinned")]
        if pinned:
            blocks.append(
                Text(
                    f"Trial(s) {', '.join(pinned)} ranked channels globally; their final fine-tune kept the "
                    "per-layer channel counts that ranking reaches on the dense model, the shape whose "
                    "costs were checked (the policy file lists them per layer)."
                )
            )
        blocks.append(
            Table(
                [
                    {
                        "trial": c["number"],
                        f"search val {metric}": c["search_val_metric"],
                        f"final val {metric}": c["val_metric"],
                        "cost / limit": c["cost"],
                    }
                    for c in final["candidates"]
                ]
            )
        )

    blocks.append(Heading("Pareto front"))
    if front is None or front.empty:
        missing.append("a feasible fine-tuned trial (the front is empty)")
        blocks.append(Text("No feasible fine-tuned trial yet, so no front."))
    else:
        blocks.append(
            Text(
                f"Feasible, fine-tuned, non-dominated trials over (validation {metric}, cost / limit of the "
                f"first budget); cheapest first."
            )
        )
        blocks.append(
            Table(front[[c for c in FRONT_COLUMNS if c in front]].to_dict(orient="records"))
        )
        if final is not None and final.get("front_latency"):
            blocks.append(
                Text(
                    "Latency of every front candidate, estimated by the latency model during the search and "
                    "measured after it (median of 3 interleaved rounds with the dense model):"
                )
            )
            blocks.append(
                Table(
                    [
                        {
                            "trial": r["number"],
                            "estimated ms": r["estimated_ms"],
                            "measured ms": r["measured_ms"],
                            "measured / dense": r["measured_vs_dense"],
                            "limit ms": r["limit_ms"],
                            "met": "yes" if r["met"] else "NO",
                        }
                        for r in final["front_latency"]
                    ]
                )
            )
    if not complete.empty:
        classified = classify(trials)
        dense_cost = _dense_cost(run)
        final_point = None
        if final is not None and front is not None and not front.empty:
            chosen = front[front["number"] == final["chosen_trial"]]
            if not chosen.empty:
                final_point = (float(chosen["cost"].iloc[0]), float(final["val_metric"]))
        pareto = pareto_plot(
            classified,
            dense_metric=dense.get("val_metric", math.nan),
            dense_cost=dense_cost,
            seeds=seed_rows(trials),
            path=figures / "pareto.png",
            cost_label=f"{setup['budgets'][0].split('=')[0]} / limit",
            metric_label=f"validation {metric}",
            final=final_point,
        )
        blocks.append(
            Image(
                pareto,
                "Pareto plot: front, dominated, screened-only and over-budget trials; dense model and seed policies marked",
            )
        )
        counts = classified["category"].value_counts().to_dict()
        blocks.append(
            Text(
                "Trials by category: "
                + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                + "."
            )
        )
    if final is not None:
        blocks.append(Heading("Final model, per layer"))
        layers = final["final"]["layers"]
        blocks.append(
            Image(
                sparsity_plot(layers, figures / "sparsity.png"),
                "Weights and channels removed per layer",
            )
        )
        blocks.append(
            Table(
                [
                    {
                        "layer": r["layer"],
                        "granularity": r["granularity"],
                        "weights removed": r["sparsity"],
                        "channels removed": r["channel_ratio"],
                        "params before": r["params_before"],
                        "non-zero params": r["nonzero_params"],
                    }
                    for r in layers
                ]
            )
        )
    blocks.append(Heading("Sensitivity"))
    any_sensitivity = False
    for granularity in ("unstructured", "structured"):
        sdir = run_dir / "sensitivity" / granularity
        if (sdir / "sensitivity.png").is_file():
            any_sensitivity = True
            blocks.append(Image(sdir / "sensitivity.png", f"Sensitivity curves ({granularity})"))
            ranking = _read_csv(sdir / "ranking.csv")
            if ranking is not None:
                blocks.append(Table(ranking.to_dict(orient="records")))
    if not any_sensitivity:
        blocks.append(Text("The sensitivity analysis was off for this run."))
    blocks.append(Heading("Optimisation history"))
    if not complete.empty:
        blocks.append(
            Image(
                history_plot(trials, figures / "history.png", metric_label=f"validation {metric}"),
                "Validation metric by trial and the best feasible so far",
            )
        )
    if not failed.empty:
        blocks.append(Heading("Failed trials"))
        blocks.append(
            Table([{"trial": int(r.number), "reason": r.fail_reason} for r in failed.itertuples()])
        )
    if missing:
        blocks.append(Heading("Not in this report yet"))
        blocks.append(Text("; ".join(missing) + "."))
    return blocks, missing


def _dense_cost(run: dict) -> float:
    kind = run["setup"]["budgets"][0].split("=")[0]
    limit = run.get("limits", {}).get(kind)
    dense_value = {
        "params": run.get("dense_costs", {}).get("params"),
        "macs": run.get("dense_costs", {}).get("macs"),
        "size": run.get("dense_costs", {}).get("bytes"),
        "latency": run.get("dense_latency_ms"),
    }.get(kind)
    return dense_value / limit if dense_value and limit else math.nan


def build_report(run_dir: str | Path) -> dict[str, Path]:
    """Write ``report.md``, ``report.html`` and ``figures/`` in ``run_dir``; returns their paths."""
    from autoprune._io import remove_stale_temporaries

    run_dir = Path(run_dir)
    blocks, missing = collect_blocks(run_dir)
    for directory in (run_dir, run_dir / "figures", run_dir / "final"):
        if directory.is_dir():  # what killed writers left behind
            remove_stale_temporaries(directory)
    title = blocks[0].text
    md, page = run_dir / "report.md", run_dir / "report.html"
    write_text(md, to_markdown(blocks, run_dir))
    write_text(page, to_html(blocks, title))
    return {"markdown": md, "html": page, "missing": missing}
