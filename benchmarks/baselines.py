"""The baselines autoprune is compared with: reference points and budget-matched pruners.

Reference points (fixed amounts, not matched to the budget):

* ``dense``: the dense checkpoint itself;
* ``seed-unstructured-50``: the seed study's 50% unstructured L1 (every layer), one-shot, fine-tuned;
* ``seed-structured-50``: the seed study's structured pruning of half the channels (L1), fine-tuned.

Budget-matched (each finds its own knob by bisection on the real pruned model's
cost, then fine-tunes once with the benchmark's recipe):

* ``torch-global-l1``: ``torch.nn.utils.prune.global_unstructured`` with L1 over every
  prunable layer (knob: the global amount); the reparametrisation stays during
  fine-tuning (masks enforced), ``prune.remove`` before measuring;
* ``tp-uniform-l1``, ``tp-global-l1``, ``tp-global-taylor``: Torch-Pruning's pruner
  (``pruning_ratio``), local or global, magnitude (p=1) or Taylor importance
  (gradients of a few training batches), the output layer ignored;
* ``lamp``: autoprune's global ranking with the LAMP criterion (Lee et al. 2021);
* ``erk``: Erdos-Renyi-Kernel per-layer densities (Evci et al. 2020), local L1;
* ``uniform-structured``: the same channel ratio on every channel group (L1).

Example:
    >>> sorted(m.name for m in BASELINES)[:3]
    ['dense', 'erk', 'lamp']
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from autoprune.introspect import prunable_layers
from autoprune.policy import LayerPolicy, Policy
from autoprune.tasks import iterate_batches
from benchmarks._matching import erk_densities
from benchmarks._method import ALL_KINDS, Method, Outcome

MAX_AMOUNT = 0.999  # the largest fraction of weights a knob may remove


class Dense(Method):
    name, series, fixed = "dense", "reference", True
    description = "the dense checkpoint (no pruning, no fine-tuning)"
    kinds = ALL_KINDS

    def run(self, ctx, budget, seed):
        return Outcome(ctx.fresh_dense())


class SeedRecipe(Method):
    """The seed study's fixed recipes: 50% of every layer, L1, one-shot, fine-tuned."""

    series, fixed, kinds = "reference", True, ALL_KINDS

    def __init__(self, granularity: str) -> None:
        self.granularity = granularity
        self.structured = granularity == "structured"
        self.name = f"seed-{granularity}-50"
        self.description = (
            "50% of every layer's weights, L1, one-shot, fine-tuned"
            if not self.structured
            else "50% of every channel group's channels, L1, one-shot, fine-tuned"
        )

    def run(self, ctx, budget, seed):
        layers = ctx.structured_layers if self.structured else ctx.layers
        policy = Policy.uniform(layers, 0.5, granularity=self.granularity, criterion="l1")
        return Outcome(ctx.finetune_policy(policy, seed), {"knob": 0.5})


class PolicyBaseline(Method):
    """A baseline expressed as an autoprune Policy of one knob; fine-tuned with prune_and_finetune."""

    low, high, increasing, knob_name = 0.0, MAX_AMOUNT, False, "amount"

    def policy(self, ctx, knob: float) -> Policy:
        raise NotImplementedError

    def run(self, ctx, budget, seed):
        match = ctx.match(
            budget,
            lambda k: ctx.prune_only(self.policy(ctx, k)),
            low=self.low,
            high=self.high,
            increasing=self.increasing,
        )
        before = ctx.test_metric(ctx.prune_only(self.policy(ctx, match.knob)))
        model = ctx.finetune_policy(self.policy(ctx, match.knob), seed)
        return Outcome(
            model,
            {
                "knob": match.knob,
                "knob_name": self.knob_name,
                "probes": match.probes,
                "test_metric_before_finetune": before,
            },
        )


class Lamp(PolicyBaseline):
    name, series, knob_name = "lamp", "unstructured", "global sparsity"
    description = "LAMP scores, one global ranking over every layer (Lee et al. 2021)"

    def policy(self, ctx, knob):
        return Policy.global_ranking(ctx.layers, knob, granularity="unstructured", criterion="lamp")


class Erk(PolicyBaseline):
    name, series, knob_name = "erk", "unstructured", "weight density"
    description = "Erdos-Renyi-Kernel per-layer densities (Evci et al. 2020), L1 within each layer"
    low, high, increasing = 1e-3, 1.0, True

    def policy(self, ctx, knob):
        shapes = {n: tuple(m.weight.shape) for n, m in prunable_layers(ctx.dense).items()}
        densities = erk_densities(shapes, knob)
        layers = {
            n: LayerPolicy(
                granularity="unstructured",
                criterion="l1",
                sparsity=min(MAX_AMOUNT, max(0.0, 1.0 - d)),
            )
            for n, d in densities.items()
        }
        return Policy(layers=layers)


class UniformStructured(PolicyBaseline):
    name, series, knob_name = "uniform-structured", "structured", "channel ratio"
    description = (
        "the same channel ratio on every channel group, L1 (structured, physically removed)"
    )
    kinds, structured, high = ALL_KINDS, True, 0.99

    def policy(self, ctx, knob):
        return Policy.uniform(ctx.structured_layers, knob, granularity="structured", criterion="l1")


class TorchGlobalL1(Method):
    name, series = "torch-global-l1", "unstructured"
    description = (
        "torch.nn.utils.prune.global_unstructured, L1Unstructured over every prunable layer"
    )

    @staticmethod
    def _prune(ctx, amount: float) -> nn.Module:
        from torch.nn.utils import prune

        model = ctx.fresh_dense()
        targets = [(module, "weight") for module in prunable_layers(model).values()]
        prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
        return model

    @staticmethod
    def _remove(model: nn.Module) -> nn.Module:
        from torch.nn.utils import prune

        for module in prunable_layers(model).values():
            if prune.is_pruned(module):
                prune.remove(module, "weight")
        return model

    def run(self, ctx, budget, seed):
        match = ctx.match(
            budget, lambda a: self._remove(self._prune(ctx, a)), low=0.0, high=MAX_AMOUNT
        )
        model = self._prune(ctx, match.knob)
        ctx.train(model, seed)  # the reparametrisation keeps pruned weights at zero while training
        return Outcome(
            self._remove(model),
            {"knob": match.knob, "knob_name": "global amount", "probes": match.probes},
        )


class TorchPruning(Method):
    """Torch-Pruning's BasePruner (``MetaPruner``) at one ``pruning_ratio``, the output layer ignored."""

    series, kinds, structured = "structured", ALL_KINDS, True

    def __init__(self, name: str, *, global_pruning: bool, taylor: bool, description: str) -> None:
        self.name, self.global_pruning, self.taylor, self.description = (
            name,
            global_pruning,
            taylor,
            description,
        )

    def _gradients(self, ctx, seed: int, batches: int = 8) -> dict[str, torch.Tensor]:
        """Summed loss gradients of the dense model on ``batches`` seeded training batches (eval mode)."""
        model = ctx.fresh_dense()
        generator = torch.Generator().manual_seed(seed)
        data = iterate_batches(
            ctx.task.train_data, batch_size=ctx.task.batch_size, shuffle=True, generator=generator
        )
        for i, (inputs, targets) in enumerate(data):
            if i >= batches:
                break
            ctx.task.loss(model(inputs), targets).backward()
        return {
            n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None
        }

    def _prune(self, ctx, ratio: float, grads: dict[str, torch.Tensor] | None) -> nn.Module:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import torch_pruning as tp

            model = ctx.fresh_dense()
            for name, parameter in model.named_parameters():
                if grads and name in grads:
                    parameter.grad = grads[name].clone()
            layers = prunable_layers(model)
            importance = (
                tp.importance.TaylorImportance()
                if self.taylor
                else tp.importance.MagnitudeImportance(p=1)
            )
            pruner = tp.pruner.BasePruner(
                model,
                ctx.example_input,
                importance=importance,
                pruning_ratio=ratio,
                global_pruning=self.global_pruning,
                ignored_layers=[layers[n] for n in ctx.output_layers],
            )
            pruner.step()
        model.zero_grad(set_to_none=True)
        return model.eval()

    def run(self, ctx, budget, seed):
        grads = self._gradients(ctx, seed) if self.taylor else None
        layers = prunable_layers(ctx.dense)
        smallest = min(layers[n].weight.shape[0] for n in ctx.structured_layers)
        high = min(
            0.95, 1.0 - 1.5 / smallest
        )  # every layer keeps a channel, so the cost stays monotone
        match = ctx.match(budget, lambda r: self._prune(ctx, r, grads), low=0.0, high=high)
        model = ctx.train(self._prune(ctx, match.knob, grads), seed)
        return Outcome(
            model, {"knob": match.knob, "knob_name": "pruning_ratio", "probes": match.probes}
        )


BASELINES: tuple[Method, ...] = (
    Dense(),
    SeedRecipe("unstructured"),
    SeedRecipe("structured"),
    TorchGlobalL1(),
    TorchPruning(
        "tp-uniform-l1",
        global_pruning=False,
        taylor=False,
        description="Torch-Pruning, the same pruning_ratio on every layer, L1 magnitude",
    ),
    TorchPruning(
        "tp-global-l1",
        global_pruning=True,
        taylor=False,
        description="Torch-Pruning, global pruning, L1 magnitude (normalised per group)",
    ),
    TorchPruning(
        "tp-global-taylor",
        global_pruning=True,
        taylor=True,
        description="Torch-Pruning, global pruning, first-order Taylor importance (8 training batches)",
    ),
    Lamp(),
    Erk(),
    UniformStructured(),
)
