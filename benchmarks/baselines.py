"""The baselines autoprune is compared with: the dense control and budget-matched pruners.

Every budget-matched baseline finds its own knob by bisection on the real
pruned model's cost (:mod:`benchmarks._matching`) and returns the pruned model
untrained; the runner takes it through both regimes (one-shot, with recovery).
A baseline prunes the same way for every seed (data-driven criteria use a fixed
calibration set), so its match is found once per budget and its time charged
to every seed's row; the seeds vary the BatchNorm calibration subset and the
recovery's data order.

* ``dense``: the dense checkpoint (one-shot column) and the dense model given
  the same recovery (recovery column): the controls;
* unstructured (params and size budgets): ``uniform`` (the same sparsity in
  every layer, L1), ``global-magnitude`` (``torch.nn.utils.prune.global_unstructured``,
  L1), ``lamp`` (Lee et al. 2021), ``erk`` (Evci et al. 2020), ``owl``
  (outlier-weighted layerwise sparsity, Yin et al. 2024: layers with more
  activation outliers keep more weights; L1 inside a layer, so the row
  isolates the allocation);
* structured (every budget kind): ``tp-uniform-l1``, ``tp-global-l1``,
  ``tp-global-taylor`` (Torch-Pruning's pruner, ``pruning_ratio``, the output
  layer ignored; CNNs), ``uniform-structured`` (the same channel, head and
  neuron ratio everywhere, L1), ``global-units-l1`` and ``global-units-taylor``
  (transformers: one global ranking of heads and neurons by magnitude or by
  Taylor score), ``modelopt-fastnas`` (:mod:`benchmarks._modelopt`).

Example:
    >>> sorted(m.name for m in BASELINES)[:3]
    ['dense', 'erk', 'global-magnitude']
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import torch
from torch import nn

from autoprune.introspect import prunable_layers
from autoprune.policy import LayerPolicy, Policy
from autoprune.tasks import iterate_batches
from benchmarks._matching import erk_densities, outlier_ratios, owl_densities
from benchmarks._method import ALL_KINDS, Method, Outcome
from benchmarks._modelopt import ModelOptFastNAS

MAX_AMOUNT = 0.999  # the largest fraction of weights a knob may remove
# the calibration batches of data-driven criteria (Taylor, OWL's outliers) are part of the method, as in
# their papers: fixed, so a method prunes the same way for every seed (seeds vary the regimes)
CALIBRATION_SEED = 0
TP_ON_TRANSFORMERS = (
    "Torch-Pruning needs a transformer's head layout configured by hand; "
    "the global-units rows rank heads and neurons instead"
)


class Dense(Method):
    name, series, fixed = "dense", "reference", True
    description = "the dense checkpoint; with recovery: the dense model given the same recovery"
    kinds = ALL_KINDS

    def run(self, ctx, budget, seed):
        return Outcome(ctx.fresh_dense())


class PolicyBaseline(Method):
    """A baseline expressed as an autoprune Policy of one knob, pruned by autoprune's Pruner."""

    low, high, increasing, knob_name, seed_free = 0.0, MAX_AMOUNT, False, "amount", True

    def policy(self, ctx, knob: float, seed: int) -> Policy:
        raise NotImplementedError

    def run(self, ctx, budget, seed):
        match, charged = _match(
            self,
            ctx,
            budget,
            lambda: ctx.match(
                budget,
                lambda k: ctx.prune_only(self.policy(ctx, k, seed)),
                low=self.low,
                high=self.high,
                increasing=self.increasing,
            ),
        )
        model = ctx.prune_only(self.policy(ctx, match.knob, seed))
        info = {"knob": match.knob, "knob_name": self.knob_name, "probes": match.probes}
        return Outcome(model, {**info, "charged_seconds": charged})


def _match(method, ctx, budget, find):
    """The method's match and the seconds to charge beyond this call (a shared match found earlier)."""
    if not method.seed_free:
        return find(), 0.0
    import time

    start = time.perf_counter()
    match, seconds = ctx.shared_match(method.name, budget, find)
    return match, max(0.0, seconds - (time.perf_counter() - start))


class Uniform(PolicyBaseline):
    name, series, knob_name = "uniform", "unstructured", "sparsity"
    description = "the same sparsity in every prunable layer, L1 within each layer"

    def policy(self, ctx, knob, seed):
        return Policy.uniform(ctx.layers, knob, granularity="unstructured", criterion="l1")


class Lamp(PolicyBaseline):
    name, series, knob_name = "lamp", "unstructured", "global sparsity"
    description = "LAMP scores, one global ranking over every layer (Lee et al. 2021)"

    def policy(self, ctx, knob, seed):
        return Policy.global_ranking(ctx.layers, knob, granularity="unstructured", criterion="lamp")


class Erk(PolicyBaseline):
    name, series, knob_name = "erk", "unstructured", "weight density"
    description = "Erdos-Renyi-Kernel per-layer densities (Evci et al. 2020), L1 within each layer"
    low, high, increasing = 1e-3, 1.0, True

    def policy(self, ctx, knob, seed):
        shapes = {n: tuple(m.weight.shape) for n, m in prunable_layers(ctx.dense).items()}
        return _local_densities(erk_densities(shapes, knob), "l1")


class Owl(PolicyBaseline):
    """Outlier-weighted layerwise sparsity: per-layer densities from activation outliers."""

    name, series, knob_name = "owl", "unstructured", "mean density"
    description = (
        "OWL (Yin et al. 2024): layers with more outliers (|W| x input norm above 5x the layer mean) "
        "keep more weights (densities spread by +-0.08); L1 within a layer"
    )
    low, high, increasing = 1e-3, 1.0, True

    def run(self, ctx, budget, seed):
        self._ratios = outlier_ratios(ctx.dense, ctx.task, seed=CALIBRATION_SEED)
        outcome = super().run(ctx, budget, seed)
        outcome.info["outlier_ratios"] = {k: round(v, 5) for k, v in self._ratios.items()}
        return outcome

    def policy(self, ctx, knob, seed):
        return _local_densities(owl_densities(self._ratios, knob), "l1")


def _local_densities(densities: dict[str, float], criterion: str) -> Policy:
    layers = {
        n: LayerPolicy(
            granularity="unstructured",
            criterion=criterion,
            sparsity=min(MAX_AMOUNT, max(0.0, 1.0 - d)),
        )
        for n, d in densities.items()
        if d < 1.0
    }
    return Policy(layers=layers)


class UniformStructured(PolicyBaseline):
    name, series, knob_name = "uniform-structured", "structured", "unit ratio"
    description = (
        "the same channel (head, neuron) ratio in every group, L1 (structured, physically removed)"
    )
    kinds, structured, high = ALL_KINDS, True, 0.99

    def policy(self, ctx, knob, seed):
        return Policy.uniform(ctx.structured_layers, knob, granularity="structured", criterion="l1")


class GlobalUnits(PolicyBaseline):
    """One global ranking of a transformer's heads and neurons, by magnitude or Taylor score."""

    series, knob_name, kinds, structured = "structured", "global unit share", ALL_KINDS, True
    transformer_only, high = True, 0.95

    def __init__(self, criterion: str) -> None:
        self.criterion = criterion
        self.name = f"global-units-{criterion}"
        self.description = (
            f"one global ranking of attention heads and feed-forward neurons by "
            f"{'L1 magnitude' if criterion == 'l1' else 'first-order Taylor score'}"
        )

    def policy(self, ctx, knob, seed):
        ranking = Policy.global_ranking(
            ctx.structured_layers, knob, granularity="structured", criterion=self.criterion
        )
        return replace(ranking, seed=CALIBRATION_SEED)


class GlobalMagnitude(Method):
    name, series = "global-magnitude", "unstructured"
    description = (
        "torch.nn.utils.prune.global_unstructured, L1Unstructured over every prunable layer"
    )

    @staticmethod
    def _prune(ctx, amount: float) -> nn.Module:
        from torch.nn.utils import prune

        model = ctx.fresh_dense()
        layers = prunable_layers(model).values()
        prune.global_unstructured(
            [(m, "weight") for m in layers], pruning_method=prune.L1Unstructured, amount=amount
        )
        for module in layers:
            prune.remove(module, "weight")
        return model

    seed_free = True

    def run(self, ctx, budget, seed):
        match, charged = _match(
            self,
            ctx,
            budget,
            lambda: ctx.match(budget, lambda a: self._prune(ctx, a), low=0.0, high=MAX_AMOUNT),
        )
        info = {"knob": match.knob, "knob_name": "global amount", "probes": match.probes}
        return Outcome(self._prune(ctx, match.knob), {**info, "charged_seconds": charged})


class TorchPruning(Method):
    """Torch-Pruning's BasePruner (``MetaPruner``) at one ``pruning_ratio``, the output layer ignored."""

    series, kinds, structured, cnn_only = "structured", ALL_KINDS, True, TP_ON_TRANSFORMERS
    seed_free = True

    def __init__(self, name: str, *, global_pruning: bool, taylor: bool, description: str) -> None:
        self.name, self.global_pruning, self.taylor = name, global_pruning, taylor
        self.description = description

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
        grads = self._gradients(ctx, CALIBRATION_SEED) if self.taylor else None
        layers = prunable_layers(ctx.dense)
        smallest = min(layers[n].weight.shape[0] for n in ctx.structured_layers)
        # every layer keeps a channel, so the cost stays monotone
        high = min(0.95, 1.0 - 1.5 / smallest)
        match, charged = _match(
            self,
            ctx,
            budget,
            lambda: ctx.match(budget, lambda r: self._prune(ctx, r, grads), low=0.0, high=high),
        )
        info = {"knob": match.knob, "knob_name": "pruning_ratio", "probes": match.probes}
        return Outcome(self._prune(ctx, match.knob, grads), {**info, "charged_seconds": charged})


BASELINES: tuple[Method, ...] = (
    Dense(),
    Uniform(),
    GlobalMagnitude(),
    Lamp(),
    Erk(),
    Owl(),
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
    UniformStructured(),
    GlobalUnits("l1"),
    GlobalUnits("taylor"),
    ModelOptFastNAS(),
)
