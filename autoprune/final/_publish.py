"""Step 4 of the final model: save it whole in a staging directory, publish it as ``final/``.

The policy file and the weights are written to a staging directory of this
process's own (``.final-<pid>-<random>``) and renamed to ``final/`` under a
lock: a crash never leaves half a final model, and two finalizes of one run
never share (or delete) a staging directory. A previous ``final/`` is kept as
``final-<time>/``.

Example:
    >>> import tempfile, pathlib
    >>> run = pathlib.Path(tempfile.mkdtemp())
    >>> staging = staging_dir(run)
    >>> staging.is_dir(), staging.name.startswith(STAGING_PREFIX)
    (True, True)
    >>> (run / "final").mkdir()
    >>> keep_previous(run / "final").name.startswith("final-"), (run / "final").exists()
    (True, False)
"""

from __future__ import annotations

import datetime
from dataclasses import replace
from pathlib import Path

from autoprune._io import write_json
from autoprune.apply import builder_path, save_pruned
from autoprune.final._finetune import Tuned
from autoprune.final._summary import FinalSummary
from autoprune.policy_file import PolicyDocument, fingerprint, provenance
from autoprune.prune.inputs import RESULTS_KEY as INPUTS_KEY
from autoprune.prune.inputs import input_record
from autoprune.search._lock import FileLock

STAGING_PREFIX = ".final-"


def staging_dir(run_dir: Path, prefix: str = STAGING_PREFIX) -> Path:
    """A new, empty staging directory ``<prefix><pid>-<random>`` for this process's final model.

    Stale ones (of the same ``prefix``) left by dead processes go.
    """
    import os
    import shutil
    import tempfile

    from autoprune._io import pid_alive

    for old in run_dir.glob(prefix + "*"):
        pid = old.name[len(prefix) :].partition("-")[0]
        if old.is_dir() and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=run_dir))


def keep_previous(final_dir: Path) -> Path | None:
    """Rename an existing ``final/`` to ``final-<time>/`` (its modification time); returns the new path."""
    if not final_dir.exists():
        return None
    stamp = datetime.datetime.fromtimestamp(final_dir.stat().st_mtime).strftime("%Y%m%d-%H%M%S")
    kept = final_dir.with_name(f"final-{stamp}")
    n = 1
    while kept.exists():
        kept = final_dir.with_name(f"final-{stamp}-{n}")
        n += 1
    final_dir.rename(kept)
    return kept


def save_final(ctx, staging: Path, chosen: Tuned, *, rule: str, test_metric: float) -> dict:
    """Write the chosen model's policy file (with its provenance and results) and weights to ``staging``.

    Returns the input features the model reads (``results.inputs``; empty when all).
    """
    setup = ctx.setup
    document = PolicyDocument(
        chosen.policy,
        fingerprint=fingerprint(ctx.dense),
        provenance=provenance(
            task=setup.task,
            task_options=setup.task_options,
            budget=setup.budgets,
            seed=setup.seed,
            trial=chosen.candidate.number,
            rule=rule,
            builder=builder_path(ctx.task.build_model),
            input_shape=list(ctx.example_input.shape),
            input_dtype=str(ctx.example_input.dtype).removeprefix("torch."),
            device=str(ctx.device),
            latency_batch_size=setup.latency_batch_size,
            latency_threads=setup.latency_threads,
        ),
        results={
            "val_metric": chosen.candidate.val_metric,
            "test_metric": test_metric,
            "start": chosen.candidate.start,
        },
    )
    inputs = input_record(chosen.outcome.model, ctx.task.feature_names)
    if inputs:
        document.results[INPUTS_KEY] = inputs
    save_pruned(chosen.outcome.model, staging, document, history=chosen.outcome.history)
    return inputs


def publish(run_dir: Path, staging: Path, summary: FinalSummary) -> FinalSummary:
    """Write ``final.json`` in ``staging`` and rename it to ``final/`` under the run's lock.

    Returns the summary, with ``previous_final`` set when an earlier ``final/`` was kept.
    """
    final_dir = run_dir / "final"
    write_json(staging / "final.json", summary.to_dict())
    with FileLock(run_dir / ".final.lock"):  # one publisher at a time: final/ is always whole
        previous = keep_previous(final_dir)
        staging.rename(final_dir)
        if previous:
            summary = replace(summary, previous_final=str(previous))
            write_json(final_dir / "final.json", summary.to_dict())
    return summary
