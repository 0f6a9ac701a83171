"""Data statistics the data-driven criteria need, gathered in one pass over a few batches.

* ``taylor``: sum over batches of ``|w * dL/dw|`` (first-order Taylor saliency);
* ``fisher``: mean over batches of ``(dL/dw)^2`` (diagonal empirical Fisher, for OBD);
* ``act_in``: mean ``|x|`` of each input feature or channel of a layer;
* ``act_out``: mean ``|y|`` of each output neuron or channel.

Batches are drawn, seeded, from the training split; the model runs in eval
mode, so BatchNorm statistics and dropout are untouched.

Example:
    >>> import torch
    >>> from autoprune.tasks import get_task
    >>> task = get_task("digits-mlp"); model = task.new_model()
    >>> stats = collect_statistics(model, {"fc1": model.fc1}, task, needs={"act_in"}, batches=2)
    >>> stats["fc1"]["act_in"].shape
    torch.Size([64])
"""

from __future__ import annotations

import torch
from torch import nn

from autoprune._device import model_device
from autoprune.tasks import Task, iterate_batches
from autoprune.tasks._data import take


def _channel_mean_abs(t: torch.Tensor, *, last: bool) -> torch.Tensor:
    """Mean |t| per feature: the last dimension (linear layers, e.g. (batch, tokens, features))
    or dimension 1 (convolutions), averaged over every other dimension."""
    t = t.detach().abs()
    if last:
        return t.reshape(-1, t.shape[-1]).mean(0)
    return t.transpose(0, 1).reshape(t.shape[1], -1).mean(1)


def collect_statistics(
    model: nn.Module,
    layers: dict[str, nn.Module],
    task: Task,
    *,
    needs: set[str],
    batches: int = 8,
    batch_size: int = 64,
    seed: int = 0,
) -> dict[str, dict[str, torch.Tensor]]:
    """Statistics ``needs`` (subset of taylor, fisher, act_in, act_out) for each layer."""
    stats: dict[str, dict[str, torch.Tensor]] = {name: {} for name in layers}
    if not needs:
        return stats
    data = take(task.train_data, batches * batch_size, seed=seed)
    hooks = []
    seen = {name: 0 for name in layers}

    def add(name: str, key: str, value: torch.Tensor) -> None:
        stats[name][key] = stats[name].get(key, 0) + value

    for name, module in layers.items():
        if needs & {"act_in", "act_out"}:

            def hook(mod, inputs, output, name=name):
                last = isinstance(mod, nn.Linear)
                if "act_in" in needs:
                    add(name, "act_in", _channel_mean_abs(inputs[0], last=last))
                if "act_out" in needs:
                    add(name, "act_out", _channel_mean_abs(output, last=last))
                seen[name] += 1

            hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    n_batches = 0
    device = model_device(model)
    try:
        for inputs, targets in iterate_batches(data, batch_size=batch_size):
            inputs, targets = inputs.to(device), targets.to(device)
            n_batches += 1
            model.zero_grad(set_to_none=True)
            with torch.set_grad_enabled(bool(needs & {"taylor", "fisher"})):
                loss = task.loss(model(inputs), targets)
            if needs & {"taylor", "fisher"}:
                loss.backward()
                for name, module in layers.items():
                    grad = module.weight.grad
                    if grad is None:
                        grad = torch.zeros_like(module.weight)
                    if "taylor" in needs:
                        add(name, "taylor", (module.weight.detach() * grad).abs())
                    if "fisher" in needs:
                        add(name, "fisher", grad.pow(2))
    finally:
        for h in hooks:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    for name in layers:
        for key in ("act_in", "act_out"):
            if key in stats[name]:
                stats[name][key] = stats[name][key] / max(seen[name], 1)
        if "fisher" in stats[name]:
            stats[name]["fisher"] = stats[name]["fisher"] / max(n_batches, 1)
    return stats
