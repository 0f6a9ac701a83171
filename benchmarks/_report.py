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


def _dense_line(rows: list[dict], metric: str) -> str:
    dense = next((r for r in rows if r["method"] == "dense" and r["status"] == "ok"), None)
    if dense is None:
        return "Every method starts from the same dense checkpoint (trained once with seed 0)."
    return (
        f"Every method starts from the same dense checkpoint (trained once with seed 0): test {metric} "
        f"{dense['test_metric']:.4f}, {dense['params']:,} parameters, {dense['macs']:,} MACs per input, "
        f"{dense['bytes']:,} bytes, {dense['latency_ms']:.3f} ms a batch."
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
    method_seconds = sum(r.get("wall_seconds", 0.0) or 0.0 for r in rows if r["status"] == "ok")
    lines = [
        _dense_line(rows, metric),
        "Every budget-driven baseline meets the budget itself: its own knob (global amount, channel ratio, "
        "torch-pruning's pruning_ratio, ERK density) is found by bisection on the cost of the real pruned model, "
        f"then the model is fine-tuned once: {s.epochs:g} epoch(s), Adam, learning rate {s.lr:g}, masks enforced "
        "(pruned weights stay zero). The dense model and the seed study's fixed recipes are reference points, "
        "repeated under every budget.",
        f"autoprune: `autoprune.search` with the `{s.space}` space and {s.trials} trials (the row's seed seeds the "
        f"sampler), then `finalize` (top 1) fine-tunes the pick for the same {s.epochs:g} epoch(s) at the learning rate "
        "the search chose. autoprune-nosens: the same without the sensitivity analysis. The analysis is cached per "
        "(task, seed): the first search of a seed pays for it in its wall time.",
        f"Seeds: {', '.join(map(str, seeds))}. Test {metric}: mean ± standard deviation over seeds; other columns: "
        "means. A seed drives pruning randomness, the fine-tuning order and the search's sampler.",
        f"Latency: median of {s.latency_rounds} interleaved rounds of {s.latency_repeats} timed runs, batch "
        f"{s.latency_batch_size}, {s.latency_threads} thread(s), side by side with the dense model; speedup measured "
        "= dense latency / model latency; speedup from MACs = dense MACs / the model's dense-kernel MACs (what "
        "dense CPU kernels compute: sparse weights do not reduce it). A latency match aims at 0.97 x the limit.",
        "Columns: params = non-zero parameters; MACs = MACs per input as budgets count them (each layer's MACs "
        "times its weight density); bytes = the weights file autoprune writes (sparse tensors as bitmask plus "
        "values); within budget = seeds whose measured cost meets the budget; wall s = the method's own time "
        "(matching, pruning, fine-tuning; for autoprune the search and the final fine-tune), measuring excluded.",
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
