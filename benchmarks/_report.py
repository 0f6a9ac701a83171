"""One task's report files: ``<task>.md`` (settings, versions, a table per budget), ``<task>.csv``, ``<task>_pareto.png``.

Everything is rebuilt from the per-cell result files, so a resumed or partial
run always has tables for what it has finished.

Example:
    >>> # write_task_report(out_dir, raw_dir, task="fashion-cnn", budgets=["params=0.25"], settings=s)
"""

from __future__ import annotations

from pathlib import Path

from autoprune._io import write_text
from benchmarks._context import RunSettings
from benchmarks._tables import aggregate, load_rows, pareto_plot, render_markdown, write_csv
from benchmarks.methods import METHOD_NAMES, get_method

_DENSE_KEPT = (
    "trained once with seed 0 and kept in the run's dense/ folder, as training it again with another "
    "thread count or on another machine gives other weights; its training is not counted in any wall time"
)


def _dense_line(rows: list[dict], metric: str) -> str:
    dense = next((r for r in rows if r["method"] == "dense" and r["status"] == "ok"), None)
    if dense is None:
        return f"Every method starts from the same dense checkpoint ({_DENSE_KEPT})."
    flops = f"{dense['flops']:,} FLOPs, " if dense.get("flops") else ""
    digest = f"; weights digest {dense['dense_digest']}" if dense.get("dense_digest") else ""
    return (
        f"Every method starts from the same dense checkpoint ({_DENSE_KEPT}{digest}): test {metric} {dense['oneshot_metric']:.4f}, {dense['params']:,} parameters, "
        f"{dense['macs']:,} MACs and {flops}{dense['bytes']:,} bytes per input, "
        f"{dense.get('latency_ms', float('nan')):.3f} ms a batch."
    )


def _versions_line(rows: list[dict]) -> str:
    seen = list(
        dict.fromkeys(tuple(sorted(r["versions"].items())) for r in rows if r.get("versions"))
    )
    if not seen:
        return "Versions: (no results yet)."
    text = "; or ".join(", ".join(f"{k} {v}" for k, v in versions) for versions in seen)
    return (
        ("Versions: " if len(seen) == 1 else "Versions (the results were made with several): ")
        + text
        + "."
    )


def header_lines(
    rows: list[dict], *, methods, seeds, settings: RunSettings, metric: str
) -> list[str]:
    """The settings, definitions, versions and counts that head the task's markdown."""
    s = settings
    counts = {
        status: sum(r["status"] == status for r in rows) for status in ("ok", "n/a", "failed")
    }
    method_seconds = sum(
        (r.get("wall_seconds") or 0.0) + (r.get("recovery_seconds") or 0.0)
        for r in rows
        if r["status"] == "ok"
    )
    commits = sorted({r.get("commit", "?") for r in rows if r["status"] == "ok"})
    lines = [
        _dense_line(rows, metric),
        "Two regimes for every method. **One-shot**: prune, recalibrate BatchNorm on at most "
        f"{s.calibration_images:,} training images, no training. **With recovery**: the one-shot model trained back "
        f"with `autoprune.training.recover`, the same for every method: {s.epochs:g} epoch(s), {s.optimizer}, "
        f"learning rate {s.lr:g} with the {s.lr_rule} rule, loss (1 - {s.distill_weight:g}) x the task's loss + "
        f"{s.distill_weight:g} x distillation from the dense model ({s.distill}, temperature {s.temperature:g}); "
        "pruned weights stay zero, removed channels stay removed. Dense control: the dense model (one-shot column) "
        "and the dense model given the same recovery (recovery column).",
        "Every budget-driven baseline meets the budget itself: its own knob is found by bisection on the cost of "
        "the real pruned model. autoprune: `autoprune.search` with the "
        f"`{s.space}` space and {s.trials} trials (the row's seed seeds the sampler"
        + (
            f"; its best candidates trained back for {s.search_recovery_epochs:g} epoch"
            if s.search_recovery_epochs is not None
            else ""
        )
        + "), then "
        "`autoprune.finalize(top=1, epochs=0)`: its pick, given the same one-shot step and recovery as the others.",
        f"Seeds: {', '.join(map(str, seeds))}. Test {metric}: mean ± standard deviation over seeds and the 95% "
        "t confidence interval; autoprune vs a row: Welch's t-test, ahead or behind only at p < 0.05, else level "
        "(no test with one seed).",
        f"Latency (structured rows, latency budgets, dense): median of {s.latency_rounds} interleaved rounds of "
        f"{s.latency_repeats} timed runs, batch {s.latency_batch_size}, {s.latency_threads} thread(s), side by side "
        "with the dense model; speedup measured / from MACs (dense MACs / the model's MACs) and the share of that "
        "promise kept. A latency match aims at 0.97 x the limit.",
        "Columns: params = non-zero parameters; MACs = what dense kernels execute per input (a removed channel "
        "saves MACs, a zeroed weight does not); sparse MACs = each layer's MACs times its weight density; FLOPs = "
        "every operation torch's FlopCounterMode counts (attention matrix products included, 2 per MAC); bytes = "
        "the weights file autoprune writes; wall s = everything the method needed (matching, pruning, the one-shot "
        "step; autoprune: its search, sensitivity analysis included, and the pick), recovery and measuring "
        "excluded; winner = where autoprune's winning trial came from (a seed policy, a start-up sample or a "
        "sampler proposal).",
        f"Commits: {', '.join(commits) or '?'}.",
        _versions_line(rows),
        f"Cells: {counts['ok']} ok, {counts['n/a']} n/a, {counts['failed']} failed; "
        f"method time {method_seconds / 60:.1f} min in all; torch trained on "
        f"{', '.join(map(str, sorted({r['threads'] for r in rows if r.get('threads')}))) or '?'} thread(s).",
        "Methods: " + "; ".join(f"**{m}** ({get_method(m).description})" for m in methods) + ".",
    ]
    return [line for text in lines for line in (text, "")][:-1]


def write_task_report(
    out_dir: Path, raw_dir: Path, *, task: str, budgets, settings: RunSettings
) -> dict[str, Path]:
    """Aggregate every stored cell of ``task`` and write its markdown, CSV and Pareto plot; returns their paths.

    All stored results are shown (a run restricted to some methods or seeds
    does not hide the others); ``budgets`` gives the order of the tables.
    """
    out_dir = Path(out_dir)
    rows = load_rows(raw_dir, task)
    methods = [m for m in METHOD_NAMES if any(r["method"] == m for r in rows)]
    seeds = sorted({r["seed"] for r in rows})
    stored = sorted({r["budget"] for r in rows if r["budget"]} - set(budgets))
    budgets = [*budgets, *stored]
    metric = next((r["metric"] for r in rows if r.get("metric")), "metric")
    frame = aggregate(rows, budgets, methods)
    header = header_lines(rows, methods=methods, seeds=seeds, settings=settings, metric=metric)
    paths = {
        "markdown": out_dir / f"{task}.md",
        "csv": out_dir / f"{task}.csv",
        "plot": out_dir / f"{task}_pareto.png",
    }
    write_text(
        paths["markdown"],
        render_markdown(
            frame, title=f"autoprune against the baselines: {task}", header=header, metric=metric
        ),
    )
    write_csv(frame, paths["csv"])
    pareto_plot(frame, paths["plot"], title=f"{task}: test {metric} against cost", metric=metric)
    return paths
