"""The comparison's outputs: rows aggregated over seeds per regime, headlines, then markdown, CSV, plot.

:func:`aggregate` turns the per-seed result files into one row per (regime,
budget, method): the test metric's mean, standard deviation and 95% confidence
interval over seeds, Welch's test of autoprune against that method
(:mod:`benchmarks._stats`; the verdict is autoprune's: ``ahead`` means
autoprune is ahead of that row), and the means of the costs. The dense control
is repeated under every budget (one-shot: the dense model; with recovery: the
dense model given the same recovery). :func:`headlines` reads that frame (and
only it, so the README's tables can be checked against the CSV): per regime
and budget, the best other method and autoprune. Renderers only format frames.

Example:
    >>> frame = aggregate([], ["params=0.5"], ["dense"])
    >>> list(frame.columns[:5]), len(frame)
    (['regime', 'budget', 'kind', 'budget_value', 'method'], 0)
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pandas as pd

from autoprune._io import atomic_path, read_json, write_text
from autoprune.budgets import parse_budget
from benchmarks._common import markdown_table
from benchmarks._runner import in_regime
from benchmarks._stats import compare, summarize
from benchmarks.methods import get_method

REGIMES = {"one-shot": "oneshot_metric", "recovery": "recovered_metric"}
SEARCH = "autoprune"
COLUMNS = [
    "regime",
    "budget",
    "kind",
    "budget_value",
    "method",
    "series",
    "status",
    "seeds",
    "test_metric_mean",
    "test_metric_std",
    "ci95_low",
    "ci95_high",
    "autoprune_difference",
    "autoprune_p",
    "autoprune_verdict",
    "params",
    "macs",
    "sparse_macs",
    "flops",
    "bytes",
    "latency_ms",
    "dense_latency_ms",
    "speedup_measured",
    "speedup_macs",
    "promise_kept",
    "cost_fraction",
    "met",
    "wall_seconds",
    "recovery_seconds",
    "trials",
    "provenance",
    "commits",
    "note",
]
MEANS = [
    "params",
    "macs",
    "sparse_macs",
    "flops",
    "bytes",
    "latency_ms",
    "dense_latency_ms",
    "speedup_measured",
    "speedup_macs",
    "promise_kept",
    "wall_seconds",
    "recovery_seconds",
]


def load_rows(raw_dir: Path, task: str) -> list[dict]:
    """Every stored cell of ``task`` (all statuses)."""
    return [read_json(path) for path in sorted((Path(raw_dir) / task).glob("*/*/seed*.json"))]


def _mean(rows: list[dict], key: str):
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.fmean(values) if values else None


def _note(method, ok: list[dict]) -> str:
    if method.series == "search":
        note = "; ".join(dict.fromkeys(r.get("choice", "") for r in ok))
        narrowed = [r["narrowed"] for r in ok if r.get("narrowed")]
        if narrowed:
            note += (
                f" (narrowed to measure under the budget in {len(narrowed)} of {len(ok)} seeds, "
                f"widths times {1 - max(narrowed):.2f} at most)"
            )
        return note
    knobs = [r["knob"] for r in ok if r.get("knob") is not None]
    if not knobs or method.fixed:
        return ""
    name = ok[0].get("knob_name", "knob")
    probes = round(statistics.fmean(r.get("probes", 0) for r in ok))
    return f"{name} {statistics.fmean(knobs):.4g} ({probes} probes)"


def _missing(group: list[dict]) -> str:
    bad = [r for r in group if r["status"] != "ok"]
    if not bad:
        return ""
    return f"{len(bad)} of {len(group)} seeds {bad[0]['status']}: {bad[0].get('reason', '')}"


def _provenance(ok: list[dict]) -> str:
    found = [r["provenance"] for r in ok if r.get("provenance")]
    return ", ".join(f"{found.count(p)} {p}" for p in dict.fromkeys(found))


def _aggregate_one(regime: str, text: str, method, group: list[dict], search: list[dict]) -> dict:
    budget = parse_budget(text)
    base = {
        "regime": regime,
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
    key = REGIMES[regime]
    values = [r[key] for r in ok]
    summary = summarize(values)
    row = {
        **base,
        "status": "ok" if len(ok) == len(group) else "partial",
        "seeds": len(ok),
        "test_metric_mean": summary.mean,
        "test_metric_std": summary.std,
        "ci95_low": summary.ci95[0],
        "ci95_high": summary.ci95[1],
        **{k: _mean(ok, k) for k in MEANS},
        "cost_fraction": statistics.fmean(r["fractions"].get(budget.kind) or 0.0 for r in ok)
        if all(budget.kind in r["fractions"] for r in ok)
        else None,
        "met": "ref"
        if method.fixed
        else f"{sum(r['fractions'][budget.kind] <= budget.value + 1e-12 for r in ok)}/{len(ok)}",
        "trials": _mean(ok, "trials"),
        "provenance": _provenance(ok),
        "commits": ", ".join(sorted({r.get("commit", "?") for r in ok})),
        "note": "; ".join(filter(None, [_note(method, ok), _missing(group)])),
    }
    if search and method.name != SEARCH:
        result = compare([r[key] for r in search], values)
        row.update(
            autoprune_difference=result.difference,
            autoprune_p=result.p_value,
            autoprune_verdict=result.verdict,
        )
    return row


def aggregate(rows: list[dict], budgets, methods) -> pd.DataFrame:
    """One row per (regime, budget, method) that has results, in the given orders."""
    out = []
    for regime in REGIMES:
        seen = [in_regime(r, regime) for r in rows]
        for text in budgets:
            search = [
                r
                for r in seen
                if r["method"] == SEARCH and r["budget"] == text and r["status"] == "ok"
            ]
            for name in methods:
                method = get_method(name)
                group = [
                    r
                    for r in seen
                    if r["method"] == name
                    and (r["budget"] is None if method.fixed else r["budget"] == text)
                ]
                if group:
                    out.append(_aggregate_one(regime, text, method, group, search))
    return pd.DataFrame(out, columns=COLUMNS)


# ----------------------------------------------------------------------------- headlines


def headlines(frame: pd.DataFrame) -> pd.DataFrame:
    """Per regime and budget: the best other method, autoprune, the verdict, provenance and costs."""
    out = []
    done = frame[frame.seeds > 0]
    for (regime, budget), sub in done.groupby(["regime", "budget"], sort=False):
        others = sub[(sub.series != "reference") & (sub.method != SEARCH)]
        dense = sub[sub.method == "dense"]
        mine = sub[sub.method == SEARCH]
        row = {"regime": regime, "budget": budget}
        if not dense.empty:
            row["dense"] = _pm(dense.iloc[0])
        if not others.empty:
            best = others.sort_values("test_metric_mean", ascending=False).iloc[0]
            row.update(best_other=best.method, best_other_metric=_pm(best))
            row["best_other_wall_s"] = _fmt(best.wall_seconds, ".0f")
            if not mine.empty and pd.notna(best.autoprune_verdict):
                p = "n/a" if pd.isna(best.autoprune_p) else f"{best.autoprune_p:.3g}"
                row["verdict"] = f"{best.autoprune_verdict} (p {p})"
        if not mine.empty:
            a = mine.iloc[0]
            row.update(
                autoprune=_pm(a),
                autoprune_ci95=f"[{a.ci95_low:.4f}, {a.ci95_high:.4f}]",
                winner=_text(a.provenance),
                autoprune_wall_s=_fmt(a.wall_seconds, ".0f"),
                trials=_fmt(a.trials, ".0f"),
            )
        out.append(row)
    return pd.DataFrame(out)


def _text(value) -> str:
    """A text cell: empty for None and NaN (a frame read back from CSV)."""
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _pm(row: pd.Series) -> str:
    return f"{row.test_metric_mean:.4f} ± {row.test_metric_std:.4f}"


def _fmt(value, fmt: str) -> str:
    return "" if value is None or pd.isna(value) else format(value, fmt)


HEADLINE_COLUMNS = {
    "budget": "budget",
    "dense": "dense",
    "best_other": "best other method",
    "best_other_metric": "its test metric",
    "autoprune": "autoprune",
    "autoprune_ci95": "autoprune 95% CI",
    "verdict": "autoprune vs best other",
    "winner": "winning trial",
    "trials": "trials",
    "autoprune_wall_s": "autoprune wall s",
    "best_other_wall_s": "best other wall s",
}


def headline_markdown(frame: pd.DataFrame, regime: str) -> str:
    """The headline table of one regime (what the README quotes)."""
    table = headlines(frame)
    if table.empty:
        return "(no results)"
    table = table[table.regime == regime]
    rows = [
        {label: row.get(key, "") for key, label in HEADLINE_COLUMNS.items()}
        for row in table.to_dict(orient="records")
    ]
    rows = [
        {k: ("" if isinstance(v, float) and pd.isna(v) else v) for k, v in r.items()} for r in rows
    ]
    return markdown_table(rows, list(HEADLINE_COLUMNS.values()))


# ----------------------------------------------------------------------------- the full tables


def _within(met: str) -> str:
    if met == "ref":
        return met
    kept, seeds = met.split("/")
    return f"{'yes' if kept == seeds else 'NO'} ({met})"


def _markdown_rows(frame: pd.DataFrame, metric: str) -> list[dict]:
    rows = []
    for _, r in frame.iterrows():
        if r["seeds"] == 0:
            rows.append({"method": r["method"], "seeds": "0", "notes": r["note"]})
            continue
        p = "" if pd.isna(r["autoprune_p"]) else f" (p {r['autoprune_p']:.3g})"
        rows.append(
            {
                "method": r["method"],
                "seeds": str(int(r["seeds"])),
                f"test {metric}": f"{r['test_metric_mean']:.4f} ± {r['test_metric_std']:.4f}",
                "95% CI": f"[{r['ci95_low']:.4f}, {r['ci95_high']:.4f}]",
                "autoprune vs it": ""
                if pd.isna(r["autoprune_verdict"])
                else f"{r['autoprune_verdict']}{p}",
                "params": _fmt(r["params"], ",.0f"),
                "MACs": _fmt(r["macs"], ",.0f"),
                "sparse MACs": _fmt(r["sparse_macs"], ",.0f"),
                "FLOPs": _fmt(r["flops"], ",.0f"),
                "bytes": _fmt(r["bytes"], ",.0f"),
                "latency ms": _fmt(r["latency_ms"], ".3f"),
                "speedup measured / MACs": ""
                if pd.isna(r["speedup_measured"])
                else f"{r['speedup_measured']:.2f}x / {r['speedup_macs']:.2f}x ({r['promise_kept']:.0%})",
                f"{r['kind']} / dense": _fmt(r["cost_fraction"], ".4f"),
                "within budget": _within(r["met"]),
                "wall s": _fmt(r["wall_seconds"], ".0f"),
                "trials": _fmt(r["trials"], ".0f"),
                "winner": _text(r["provenance"]),
                "notes": _text(r["note"]),
            }
        )
    return rows


def render_markdown(frame: pd.DataFrame, *, title: str, header: list[str], metric: str) -> str:
    """The task's markdown: the header, the headlines, then one table per regime and budget."""
    lines = [f"# {title}", "", *header]
    for regime in REGIMES:
        sub = frame[frame.regime == regime]
        if sub.empty:
            continue
        lines += ["", f"## {regime}", "", headline_markdown(frame, regime)]
        for budget in dict.fromkeys(sub.budget):
            rows = _markdown_rows(sub[sub.budget == budget], metric)
            columns = list(dict.fromkeys(key for row in rows for key in row))
            columns.remove("notes")
            lines += [
                "",
                f"### {regime}: {parse_budget(budget)}",
                "",
                markdown_table(rows, columns + ["notes"]),
            ]
    return "\n".join(lines) + "\n"


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    write_text(path, frame.to_csv(index=False))
    return Path(path)


def pareto_plot(frame: pd.DataFrame, path: Path, *, title: str, metric: str) -> Path:
    """Test metric (mean, 95% CI bars) against the budgeted cost: one panel per regime and budget kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = frame[(frame.seeds > 0) & frame.cost_fraction.notna()]
    panels = list(dict.fromkeys(zip(done.regime, done.kind, strict=True))) or [
        ("recovery", "params")
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels) + 2.2, 4.6), squeeze=False)
    methods = list(dict.fromkeys(frame.method))
    colours = [plt.get_cmap("tab20")(i) for i in range(20)]
    for ax, (regime, kind) in zip(axes[0], panels, strict=True):
        sub = done[(done.regime == regime) & (done.kind == kind)]
        for i, name in enumerate(methods):
            points = sub[sub.method == name].sort_values("cost_fraction")
            if points.empty:
                continue
            ax.errorbar(
                points.cost_fraction,
                points.test_metric_mean,
                yerr=[
                    points.test_metric_mean - points.ci95_low,
                    points.ci95_high - points.test_metric_mean,
                ],
                label=name,
                color=colours[i % len(colours)],
                marker="osD^v<>Pp*Xh"[i % 12],
                capsize=3,
                linestyle="none" if get_method(name).fixed else "-",
                linewidth=1,
            )
        ax.set_xscale("log")
        ax.set_xlabel(f"{kind} / dense")
        ax.set_ylabel(f"test {metric}")
        ax.set_title(regime)
        ax.grid(alpha=0.3)
    legend = {}
    for ax in axes[0]:
        handles, labels = ax.get_legend_handles_labels()
        legend.update(zip(labels, handles, strict=True))
    fig.legend(list(legend.values()), list(legend), loc="center right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1 - 2.0 / (5.6 * len(panels) + 2.2), 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
