"""Data statistics the data-driven criteria need, gathered in one pass over a few batches.

* ``taylor``: sum over batches of ``|w * dL/dw|`` (first-order Taylor saliency);
* ``fisher``: mean over batches of ``(dL/dw)^2`` (diagonal empirical Fisher, for OBD);
* ``act_in``: mean ``|x|`` of each input feature or channel of a layer;
* ``act_out``: mean ``|y|`` of each output neuron or channel;
* ``act_sq``: mean ``x^2`` of each input feature or channel (Wanda's input norm, squared);
* ``act_var``: variance of each input feature or channel (FLAP's fluctuation).

Batches are drawn, seeded, from the calibration data (the training split);
the model runs in eval mode, so BatchNorm statistics and dropout are untouched.

Example:
    >>> from autoprune.tasks import get_task
    >>> task = get_task("digits-mlp"); model = task.new_model()
    >>> calibration = Calibration.from_task(task, batches=2)
    >>> stats = collect_statistics(model, {"fc1": model.fc1}, calibration, needs={"act_in"})
    >>> stats["fc1"]["act_in"].shape
    torch.Size([64])
"""

from __future__ import annotations

import torch
from torch import nn

from autoprune._device import model_device
from autoprune.errors import PruningError
from autoprune.prune._calibration import Calibration
from autoprune.tasks import iterate_batches, take

#: Per-layer data statistics: layer name -> statistic name -> tensor.
Stats = dict[str, dict[str, torch.Tensor]]


#: statistics of each input feature, gathered by forward hooks
INPUT_STATISTICS = {"act_in", "act_sq", "act_var"}


def _per_feature(t: torch.Tensor, *, last: bool) -> torch.Tensor:
    """``t`` as (values, features): features on the last dimension (linear layers, e.g. (batch,
    tokens, features)) or dimension 1 (convolutions), every other dimension flattened."""
    t = t.detach().float()
    if last:
        return t.reshape(-1, t.shape[-1])
    return t.transpose(0, 1).reshape(t.shape[1], -1).t()


def _channel_mean_abs(t: torch.Tensor, *, last: bool) -> torch.Tensor:
    """Mean |t| per feature, averaged over every other dimension."""
    return _per_feature(t, last=last).abs().mean(0)


class _Sums:
    """Running sums of the statistics per layer, and how many times each was added."""

    def __init__(self, layers: dict[str, nn.Module], needs: set[str]) -> None:
        self.layers, self.needs = layers, needs
        self.stats: Stats = {name: {} for name in layers}
        self.seen = {name: 0 for name in layers}
        self.batches = 0

    def add(self, name: str, key: str, value: torch.Tensor) -> None:
        self.stats[name][key] = self.stats[name].get(key, 0) + value

    def hook_activations(self) -> list:
        """Forward hooks adding mean ``|x|`` / ``|y|`` per feature (none when not needed)."""
        if not self.needs & (INPUT_STATISTICS | {"act_out"}):
            return []
        hooks = []
        for name, module in self.layers.items():

            def hook(mod, inputs, output, name=name):
                last = isinstance(mod, nn.Linear)
                features = _per_feature(inputs[0], last=last)
                if "act_in" in self.needs:
                    self.add(name, "act_in", features.abs().mean(0))
                if self.needs & {"act_sq", "act_var"}:
                    self.add(name, "act_sq", features.pow(2).mean(0))
                if "act_var" in self.needs:
                    self.add(name, "act_mean", features.mean(0))
                if "act_out" in self.needs:
                    self.add(name, "act_out", _channel_mean_abs(output, last=last))
                self.seen[name] += 1

            hooks.append(module.register_forward_hook(hook))
        return hooks

    def add_gradients(self) -> None:
        for name, module in self.layers.items():
            grad = module.weight.grad
            if grad is None:
                grad = torch.zeros_like(module.weight)
            if "taylor" in self.needs:
                self.add(name, "taylor", (module.weight.detach() * grad).abs())
            if "fisher" in self.needs:
                self.add(name, "fisher", grad.pow(2))

    def means(self) -> Stats:
        """Activations averaged over forward passes, the Fisher over batches; Taylor stays a sum."""
        for name, stats in self.stats.items():
            for key in ("act_in", "act_out", "act_sq", "act_mean"):
                if key in stats:
                    stats[key] = stats[key] / max(self.seen[name], 1)
            if "act_var" in self.needs and "act_sq" in stats:
                stats["act_var"] = (stats["act_sq"] - stats.pop("act_mean").pow(2)).clamp_min(0)
            if "fisher" in stats:
                stats["fisher"] = stats["fisher"] / max(self.batches, 1)
        return self.stats


def collect_statistics(
    model: nn.Module,
    layers: dict[str, nn.Module],
    calibration: Calibration,
    *,
    needs: set[str],
    seed: int = 0,
) -> Stats:
    """Statistics ``needs`` (subset of taylor, fisher, act_in, act_out, act_sq, act_var) for each layer."""
    sums = _Sums(layers, needs)
    if not needs:
        return sums.stats
    if not calibration.has_data:
        raise PruningError(
            "A data-driven criterion (taylor, obd, activation, wanda, flap) needs calibration data "
            "and a loss; "
            "pass Calibration(example_input, data, loss) or Calibration.from_task(task)."
        )
    data = take(calibration.data, calibration.batches * calibration.batch_size, seed=seed)
    gradients = bool(needs & {"taylor", "fisher"})
    hooks = sums.hook_activations()
    was_training = model.training
    model.eval()
    device = model_device(model)
    try:
        for inputs, targets in iterate_batches(data, batch_size=calibration.batch_size):
            inputs, targets = inputs.to(device), targets.to(device)
            sums.batches += 1
            model.zero_grad(set_to_none=True)
            with torch.set_grad_enabled(gradients):
                loss = calibration.loss(model(inputs), targets)
            if gradients:
                loss.backward()
                sums.add_gradients()
    finally:
        for h in hooks:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return sums.means()
