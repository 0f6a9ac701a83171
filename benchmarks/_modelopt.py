"""NVIDIA Model Optimizer's FastNAS pruning as a benchmark method (``modelopt-fastnas``).

FastNAS (``modelopt.torch.prune.prune(mode="fastnas")``) searches channel
counts under a FLOPs or parameter limit with a sensitivity map, scoring
subnets with a function we give it (validation accuracy on 1,000 items, its
own BatchNorm calibration on 16 training batches). The search space lets every
convolution and linear layer keep 5%, 10%, ... 100% of its channels (divisor
1: these models are small). It meets ``params`` budgets with its ``params``
constraint and ``macs`` budgets with its ``flops`` constraint (its count of the
dense model: 2 per MAC); when our own count of the result is over the budget,
the constraint is tightened and the search run again (at most 3 times).

A limit FastNAS's space cannot reach (it does not prune a convolution that feeds
a flatten) gives an n/a row with its message. It needs the optional
``nvidia-modelopt`` package (``make bench-deps``); without
it the rows say so. It runs on the CPU; on transformers it needs Model
Optimizer's Hugging Face plugin, which the benchmark does not install.

Example:
    >>> ModelOptFastNAS().kinds
    ('params', 'macs')
    >>> from autoprune.budgets import parse_budget
    >>> ModelOptFastNAS().unsupported(None, parse_budget("latency=0.5"))
    'cannot meet latency budgets (FastNAS constrains FLOPs and parameters, not measured latency)'

"""

from __future__ import annotations

import contextlib
import io
import random
import shutil
import warnings

import torch

from autoprune.errors import BudgetError
from autoprune.tasks import iterate_batches
from autoprune.tasks._data import take
from autoprune.training import evaluate
from benchmarks._method import Method, Outcome

RATIOS = tuple(round(0.05 * i, 2) for i in range(1, 21))
ATTEMPTS = 3


class MethodUnavailable(BudgetError):
    """The method cannot run here (a missing optional package); the row says why."""


def _search_space() -> dict:
    return {
        "nn.Conv2d": {"*": {"channels_ratio": RATIOS, "channel_divisor": 1}},
        "nn.Linear": {"*": {"features_ratio": RATIOS, "feature_divisor": 1}},
        "nn.BatchNorm2d": {},
    }


class ModelOptFastNAS(Method):
    name, series, kinds, structured = "modelopt-fastnas", "structured", ("params", "macs"), True
    description = (
        "NVIDIA Model Optimizer FastNAS: channel counts searched under its params or FLOPs "
        "constraint, subnets scored on 1,000 validation items"
    )
    cnn_only = (
        "FastNAS prunes transformers through Model Optimizer's Hugging Face plugin (not installed)"
    )
    kinds_note = "FastNAS constrains FLOPs and parameters, not measured latency"

    def run(self, ctx, budget, seed):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import modelopt.torch.prune as mtp
        except Exception as exc:  # ImportError, or a broken optional install
            raise MethodUnavailable(
                f"nvidia-modelopt is not usable here ({type(exc).__name__}: {exc}); "
                "`make bench-deps` installs it"
            ) from exc
        work = ctx.runs_dir / budget.slug / f"{self.name}-seed{seed}"
        generator = torch.Generator().manual_seed(seed)
        loader = [
            batch
            for _, batch in zip(
                range(16),
                iterate_batches(
                    ctx.task.train_data, batch_size=64, shuffle=True, generator=generator
                ),
                strict=False,
            )
        ]
        val = take(ctx.task.val_data, 1000, seed=seed)

        def score(model) -> float:
            return evaluate(model, val, ctx.task).metric

        share, tries = budget.value, []
        for _ in range(ATTEMPTS):
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True, exist_ok=True)
            try:
                model = self._prune(mtp, ctx, budget.kind, share, loader, score, work, seed)
            except ValueError as exc:  # FastNAS refuses a limit its search space cannot reach
                raise BudgetError(f"FastNAS: {' '.join(str(exc).split())[:200]}") from exc
            cost = ctx.fraction(model, budget.kind)
            tries.append({"constraint": round(share, 6), "cost": round(cost, 6)})
            if cost <= budget.value:
                return Outcome(
                    model.eval(),
                    {"knob": share, "knob_name": "FastNAS constraint", "probes": len(tries)},
                )
            share *= budget.value / cost * 0.99
        raise BudgetError(f"FastNAS results stayed over the budget: {tries}")

    @staticmethod
    def _prune(mtp, ctx, kind, share, loader, score, work, seed):
        random.seed(seed)
        torch.manual_seed(seed)
        constraint = {"params" if kind == "params" else "flops": f"{share * 100:.4f}%"}
        sink = io.StringIO()
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(sink),
            contextlib.redirect_stderr(sink),
        ):
            warnings.simplefilter("ignore")
            model, _ = mtp.prune(
                model=ctx.fresh_dense(),
                mode=[("fastnas", _search_space())],
                constraints=constraint,
                dummy_input=ctx.example_input,
                config={
                    "data_loader": loader,
                    "score_func": score,
                    "checkpoint": str(work / "fastnas.pth"),
                    "max_iter_data_loader": len(loader),
                },
            )
        return model
