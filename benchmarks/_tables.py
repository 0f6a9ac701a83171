"""The comparison's outputs: rows aggregated over seeds, then markdown, CSV and a Pareto plot.

:func:`aggregate` turns the per-seed result files into one row per (budget,
method): mean and standard deviation (over seeds, n-1) of the test metric,
means of the costs. The fixed reference rows (dense, the seed study's recipes)
are repeated under every budget. Renderers only format that frame, so tests
check the numbers, not the pictures.

Example:
    >>> frame = aggregate([], ["params=0.5"], ["dense"])
    >>> list(frame.columns[:4]), len(frame)
    (['budget', 'kind', 'budget_value', 'method'], 0)
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pandas as pd

from autoprune._io import atomic_path, read_json, write_text
from autoprune.budgets import parse_budget
from benchmarks._common import markdown_table
from benchmarks.methods import get_method

COLUMNS = [
    "budget",
    "kind",
    "budget_value",
    "method",
    "series",
    "status",
    "seeds",
    "test_metric_mean",
    "test_metric_std",
    "test_metric_before_finetune",
    "params",
    "macs",
    "kernel_macs",
    "bytes",
    "latency_ms",
    "dense_latency_ms",
    "speedup_measured",
    "speedup_macs",
    "cost_fraction",
    "cost_fraction_std",
    "met",
    "wall_seconds",
    "trials",
    "note",
]
MEANS = [
    "params",
    "macs",
    "kernel_macs",
    "bytes",
    "latency_ms",
    "dense_latency_ms",
    "speedup_measured",
    "speedup_macs",
    "wall_seconds",
]


def load_rows(raw_dir: Path, task: str) -> list[dict]:
    """Every stored cell of ``task`` (all statuses)."""
    return [read_json(path) for path in sorted((Path(raw_dir) / task).glob("*/*/seed*.json"))]


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _note(method, ok: list[dict]) -> str:
    if method.series == "search":
        return "; ".join(dict.fromkeys(r.get("choice", "") for r in ok))
    knobs = [r["knob"] for r in ok if r.get("knob") is not None]
    if not knobs or method.fixed:
        return ""
    name = ok[0].get("knob_name", "knob")
    return f"{name} {statistics.fmean(knobs):.4g} ({round(statistics.fmean(r.get('probes', 0) for r in ok))} probes)"


def _missing(group: list[dict]) -> str:
    """What the seeds without a result say (a partial row)."""
    bad = [r for r in group if r["status"] != "ok"]
    if not bad:
        return ""
    return f"{len(bad)} of {len(group)} seeds {bad[0]['status']}: {bad[0].get('reason', '')}"


def _aggregate_one(text: str, method, group: list[dict]) -> dict:
    budget = parse_budget(text)
    base = {
        "budget": text,
        "kind": budget.kind,
        "budget_value": budget.value,
        "method": method.name,
        "series": method.series,
    }
    ok = [r for r in group if r["status"] == "ok"]
    if not ok:
        first = group[0]
        return {
            **base,
            "status": first["status"],
            "seeds": 0,
            "note": f"{first['status']}: {first.get('reason', '')}",
        }
    fractions = [r["fractions"][budget.kind] for r in ok]
    metrics = [r["test_metric"] for r in ok]
    trials = [r["trials"] for r in ok if r.get("trials") is not None]
    before = [
        r["test_metric_before_finetune"]
        for r in ok
        if r.get("test_metric_before_finetune") is not None
    ]
    met = sum(f <= budget.value + 1e-12 for f in fractions)
    return {
        **base,
        "status": "ok" if len(ok) == len(group) else "partial",
        "seeds": len(ok),
        "test_metric_mean": statistics.fmean(metrics),
        "test_metric_std": _std(metrics),
        "test_metric_before_finetune": statistics.fmean(before) if before else None,
        **{key: statistics.fmean(r[key] for r in ok) for key in MEANS},
        "cost_fraction": statistics.fmean(fractions),
        "cost_fraction_std": _std(fractions),
        "met": "ref" if method.fixed else f"{met}/{len(ok)}",
        "trials": statistics.fmean(trials) if trials else None,
        "note": "; ".join(filter(None, [_note(method, ok), _missing(group)])),
    }


def aggregate(rows: list[dict], budgets, methods) -> pd.DataFrame:
    """One row per (budget, method) that has results, in the given orders (see the module docstring)."""
    out = []
    for text in budgets:
        for name in methods:
            method = get_method(name)
            group = [
                r
                for r in rows
                if r["method"] == name
                and (r["budget"] is None if method.fixed else r["budget"] == text)
            ]
            if group:
                out.append(_aggregate_one(text, method, group))
    return pd.DataFrame(out, columns=COLUMNS)


def _cell(row: pd.Series, key: str, fmt: str) -> str:
    value = row[key]
    return "" if value is None or pd.isna(value) else format(value, fmt)


def _within(met: str) -> str:
    """``ref`` for reference rows, else ``yes (3/3)`` or ``NO (2/3)``."""
    if met == "ref":
        return met
    kept, seeds = met.split("/")
    return f"{'yes' if kept == seeds else 'NO'} ({met})"


def _markdown_rows(frame: pd.DataFrame, metric: str) -> list[dict]:
    rows = []
    for _, r in frame.iterrows():
        if r["seeds"] == 0:
            rows.append(
                {"method": r["method"], "series": r["series"], "seeds": "0", "notes": r["note"]}
            )
            continue
        rows.append(
            {
                "method": r["method"],
                "series": r["series"],
                "seeds": str(int(r["seeds"])),
                f"test {metric}": f"{r['test_metric_mean']:.4f} ± {r['test_metric_std']:.4f}",
                "before fine-tuning": _cell(r, "test_metric_before_finetune", ".4f"),
                "params": _cell(r, "params", ",.0f"),
                "MACs": _cell(r, "macs", ",.0f"),
                "bytes": _cell(r, "bytes", ",.0f"),
                "latency ms": _cell(r, "latency_ms", ".3f"),
                "speedup measured": _cell(r, "speedup_measured", ".2f") + "x",
                "speedup from MACs": _cell(r, "speedup_macs", ".2f") + "x",
                f"{r['kind']} / dense": _cell(r, "cost_fraction", ".4f"),
                "within budget": _within(r["met"]),
                "wall s": _cell(r, "wall_seconds", ".0f"),
                "trials": _cell(r, "trials", ".0f"),
                "notes": r["note"] or "",
            }
        )
    return rows


def render_markdown(frame: pd.DataFrame, *, title: str, header: list[str], metric: str) -> str:
    """The task's markdown: the header lines, then one table per budget."""
    lines = [f"# {title}", "", *header]
    for budget in dict.fromkeys(frame.budget):
        sub = frame[frame.budget == budget]
        rows = _markdown_rows(sub, metric)
        columns = list(dict.fromkeys(key for row in rows for key in row))
        columns.remove("notes")
        lines += ["", f"## {parse_budget(budget)}", "", markdown_table(rows, columns + ["notes"])]
    return "\n".join(lines) + "\n"


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    write_text(path, frame.to_csv(index=False))
    return Path(path)


def pareto_plot(frame: pd.DataFrame, path: Path, *, title: str, metric: str) -> Path:
    """Test metric (mean, std error bars) against the budgeted cost fraction: one panel per budget kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(dict.fromkeys(frame.kind)) or ["params"]
    fig, axes = plt.subplots(
        1, len(kinds), figsize=(6.2 * len(kinds) + 2.2, 4.6), dpi=110, squeeze=False
    )
    methods = list(dict.fromkeys(frame.method))
    colours = [plt.get_cmap("tab10")(i) for i in range(10)] + ["black", "goldenrod"]
    markers = "osD^v<>Pp*Xh"
    for ax, kind in zip(axes[0], kinds, strict=True):
        sub = frame[(frame.kind == kind) & (frame.seeds > 0)]
        for i, name in enumerate(methods):
            points = sub[sub.method == name].drop_duplicates(
                subset=["cost_fraction", "test_metric_mean"]
            )
            if points.empty:
                continue
            points = points.sort_values("cost_fraction")
            ax.errorbar(
                points.cost_fraction,
                points.test_metric_mean,
                yerr=points.test_metric_std,
                label=name,
                color=colours[i % len(colours)],
                marker=markers[i % len(markers)],
                capsize=3,
                markersize=6,
                linestyle="none" if get_method(name).fixed else "-",
                linewidth=1,
            )
        for value in dict.fromkeys(frame[frame.kind == kind].budget_value):
            ax.axvline(value, color="gray", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ticks = sorted({*frame[frame.kind == kind].budget_value, 1.0})
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_xticks([], minor=True)
        ax.set_xlabel(f"{kind} / dense (dotted: budgets)")
        ax.set_ylabel(f"test {metric}")
        ax.grid(alpha=0.3)
    legend = {}
    for ax in axes[0]:
        handles, labels = ax.get_legend_handles_labels()
        legend.update(zip(labels, handles, strict=True))
    fig.legend(list(legend.values()), list(legend), loc="center right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1 - 2.0 / (6.2 * len(kinds) + 2.2), 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
