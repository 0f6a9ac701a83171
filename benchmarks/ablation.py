"""What the sensitivity pre-ranking buys (``python -m benchmarks ablation``).

Two searches of the same study settings, one with the sensitivity analysis
(caps and seed policies) and one without, each for ``trials`` trials. Front
quality after each trial is the best validation metric among the feasible
fine-tuned trials so far; the result is how many trials the search with the
pre-ranking needed to reach the quality the search without it had after all of
its trials. Written to ``ablation.md``, ``ablation.json`` and ``ablation.png``.

Example:
    >>> import pandas as pd
    >>> t = pd.DataFrame({"number": [0, 1, 2], "state": ["COMPLETE"] * 3, "feasible": [True] * 3,
    ...                   "fidelity": ["finetuned"] * 3, "val_metric": [0.8, 0.9, 0.85]})
    >>> best_so_far(t).tolist()
    [0.8, 0.9, 0.9]
    >>> trials_to_reach(best_so_far(t), 0.85)
    2
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from autoprune._io import write_json, write_text
from benchmarks._common import markdown_table, versions


def best_so_far(trials: pd.DataFrame) -> pd.Series:
    """After each completed trial (in order), the best feasible fine-tuned validation metric so far."""
    done = trials[trials["state"] == "COMPLETE"].sort_values("number").reset_index(drop=True)
    good = done["feasible"].astype(bool) & (done["fidelity"] == "finetuned")
    values = done["val_metric"].where(good, -math.inf)
    return values.cummax().replace(-math.inf, math.nan)


def trials_to_reach(curve: pd.Series, quality: float) -> int | None:
    """How many trials a best-so-far curve needs to reach ``quality`` (None: never)."""
    hits = curve[curve >= quality - 1e-12]
    return int(hits.index[0]) + 1 if len(hits) else None


def run(
    out: str | Path = "results/benchmarks/ablation",
    *,
    task: str = "fashion-cnn",
    budget: str = "params=0.1",
    trials: int = 40,
    seeds=(0,),
    progress: bool = True,
) -> Path:
    """Run the two searches per seed (resumable) and write the comparison; returns the markdown path."""
    from autoprune._plotting import figure, save
    from autoprune.search import SearchOptions, search

    out = Path(out)
    rows, curves = [], {}
    for seed in seeds:
        result = {}
        for label, sensitivity in (("with sensitivity", True), ("without sensitivity", False)):
            run_dir = out / "runs" / f"{'sens' if sensitivity else 'nosens'}-seed{seed}"
            result[label] = search(
                task,
                budget,
                n_trials=trials,
                out=run_dir,
                seed=seed,
                progress=progress,
                options=SearchOptions(sensitivity=sensitivity),
            )
            curves[(label, seed)] = best_so_far(result[label].trials)
        with_curve, without_curve = (
            curves[("with sensitivity", seed)],
            curves[("without sensitivity", seed)],
        )
        target = float(without_curve.iloc[-1])
        needed = trials_to_reach(with_curve, target)
        rows.append(
            {
                "seed": seed,
                "best without sensitivity (after all trials)": target,
                "best with sensitivity (after all trials)": float(with_curve.iloc[-1]),
                "trials with sensitivity to reach it": needed if needed is not None else "never",
                "of the trials": trials,
                "at most half": "yes" if needed is not None and needed <= trials / 2 else "no",
                "seconds with / without": f"{result['with sensitivity'].seconds:.0f} / {result['without sensitivity'].seconds:.0f}",
            }
        )
    plt, fig, ax = figure()
    for (label, seed), curve in curves.items():
        ax.step(
            range(1, len(curve) + 1),
            curve.values,
            where="post",
            label=f"{label}, seed {seed}",
            ls="-" if label.startswith("with ") else "--",
        )
    ax.set_xlabel("trials")
    ax.set_ylabel("best feasible validation metric so far")
    ax.set_title(f"{task} under {budget}: what the sensitivity pre-ranking buys")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save(plt, fig, out / "ablation.png")
    text = [
        f"# Sensitivity pre-ranking: {task} under {budget}",
        "",
        f"Two searches per seed, {trials} trials each, the same settings except the sensitivity analysis "
        "(with it: per-layer caps and the seed policies; without: neither). Front quality after each trial is the "
        "best validation metric of the feasible fine-tuned trials so far.",
        "",
        markdown_table(rows),
        "",
        "![best so far](ablation.png)",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()),
    ]
    write_text(out / "ablation.md", "\n".join(text) + "\n")
    write_json(
        out / "ablation.json",
        {"rows": rows, "curves": {f"{k[0]}, seed {k[1]}": v.tolist() for k, v in curves.items()}},
    )
    return out / "ablation.md"
