"""A per-layer latency table: every prunable layer timed alone at the widths the search considers.

A linear model of MACs assumes a layer at half its channels takes half its time;
on a CPU it often does not (small widths leave vector units idle, some widths
hit faster kernels). The table measures instead: each convolution or linear
layer is rebuilt at a grid of kept input and output widths (fractions
:data:`WIDTHS` of its dense dimensions, along the dimensions pruning can
shrink), fed an input of the shape it sees in the model, and timed. A
candidate's latency is then the sum of its layers' times, interpolated
between the measured widths; :class:`TableLatencyModel` calibrates that sum
against whole-model measurements (the rest of the network: norms, activations,
pooling) and reports its error on samples it was not fitted on.

Example:
    >>> import torch
    >>> from autoprune.tasks.models import FashionCNN
    >>> table = measure_table(FashionCNN(), torch.zeros(1, 1, 28, 28), free={"conv1": (False, True)},
    ...                       widths=(1.0, 0.5), batch_size=2, repeats=2)
    >>> sorted(table.layers)
    ['conv1', 'conv2', 'fc1', 'fc2']
    >>> table.layer_ms("conv1", 1, 32) > 0, table.layer_ms("conv1", 1, 0)
    (True, 0.0)
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from autoprune.introspect import measure_latency, prunable_layers

if TYPE_CHECKING:
    import pandas as pd

WIDTHS = (1.0, 0.75, 0.5, 0.25, 0.1)  # fractions of a dense dimension the table measures
COLUMNS = ("layer", "in_kept", "out_kept", "ms")


def _input_shapes(model: nn.Module, example_input: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """The shape of the input every prunable layer receives (batch of one)."""
    shapes, hooks = {}, []
    for name, module in prunable_layers(model).items():

        def record(_module, inputs, _output, name=name):
            shapes.setdefault(name, tuple(inputs[0].shape))

        hooks.append(module.register_forward_hook(record))
    was_training = model.training
    try:
        with torch.inference_mode():
            model.eval()(example_input[:1])
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return shapes


def _rebuilt(module: nn.Module, in_kept: int, out_kept: int) -> nn.Module:
    """A fresh layer of ``module``'s kind with ``in_kept`` inputs per group and ``out_kept`` outputs."""
    if isinstance(module, nn.Linear):
        return nn.Linear(in_kept, out_kept, bias=module.bias is not None)
    out_per_group = module.out_channels // module.groups
    groups = max(1, round(module.groups * out_kept / module.out_channels))
    return type(module)(
        in_kept * groups,
        groups * out_per_group if module.groups > 1 else out_kept,
        module.kernel_size,
        stride=module.stride,
        padding=module.padding,
        dilation=module.dilation,
        groups=groups,
        bias=module.bias is not None,
        padding_mode=module.padding_mode,
    )


def _input_for(module: nn.Module, shape: tuple[int, ...], layer: nn.Module) -> torch.Tensor:
    """A zero input of ``shape`` with its channel dimension resized for ``layer``."""
    size = list(shape)
    if isinstance(module, nn.Linear):
        size[-1] = layer.in_features
    else:
        size[1] = layer.in_channels
    return torch.zeros(size)


def _levels(dense: int, free: bool, widths: tuple[float, ...]) -> list[int]:
    if not free:
        return [dense]
    return sorted({max(1, round(dense * w)) for w in widths} | {dense})


def measure_table(
    model: nn.Module,
    example_input: torch.Tensor,
    *,
    free: dict[str, tuple[bool, bool]],
    widths: tuple[float, ...] = WIDTHS,
    batch_size: int = 64,
    threads: int = 1,
    repeats: int = 10,
    progress: bool = False,
) -> LatencyTable:
    """Time every prunable layer alone over its grid of (kept inputs per group, kept outputs).

    ``free[name] = (inputs, outputs)`` says which of a layer's dimensions pruning can
    shrink; a layer not in ``free`` is timed at its dense shape only.
    """
    from autoprune._progress import progress_bar

    shapes = _input_shapes(model, example_input)
    layers = {n: m for n, m in prunable_layers(model).items() if n in shapes}  # run on this input
    bar = progress_bar(total=len(layers), desc="latency table", unit="layer", enabled=progress)

    def timed(layer: nn.Module, x: torch.Tensor) -> float:
        return measure_latency(
            layer, x, batch_size=batch_size, threads=threads, repeats=repeats, warmup=2
        ).median_ms

    rows = []
    for name, module in layers.items():
        bar.update(1)
        device = module.weight.device
        in_dense, out_dense = module.weight.shape[1], module.weight.shape[0]
        free_in, free_out = free.get(name, (False, False))
        try:
            cells = []
            for in_kept in _levels(in_dense, free_in, widths):
                for out_kept in _levels(out_dense, free_out, widths):
                    layer = _rebuilt(module, in_kept, out_kept).to(device)
                    x = _input_for(module, shapes[name], layer).to(device)
                    cells.append((name, in_kept, out_kept, timed(layer, x)))
        except Exception:  # a layer that cannot be rebuilt narrower: its dense time at every width
            x = torch.zeros(shapes[name], device=device)
            cells = [(name, in_dense, out_dense, timed(module, x))]
        rows += cells
    bar.close()
    return LatencyTable(rows)


class LatencyTable:
    """Measured (layer, kept inputs per group, kept outputs) -> milliseconds, interpolated between."""

    def __init__(self, rows) -> None:
        self.rows = [(str(n), int(i), int(o), float(ms)) for n, i, o, ms in rows]
        grids: dict[str, dict[tuple[int, int], float]] = defaultdict(dict)
        for name, in_kept, out_kept, ms in self.rows:
            grids[name][in_kept, out_kept] = ms
        self._grids = {}
        for name, cells in grids.items():
            ins = np.array(sorted({i for i, _ in cells}), dtype=float)
            outs = np.array(sorted({o for _, o in cells}), dtype=float)
            values = np.array([[cells[int(i), int(o)] for o in outs] for i in ins])
            self._grids[name] = (ins, outs, values)

    @property
    def layers(self) -> list[str]:
        return list(self._grids)

    def layer_ms(self, name: str, in_kept: float, out_kept: float) -> float:
        """Time of layer ``name`` at these widths (bilinear between measured widths, clamped)."""
        if name not in self._grids or in_kept <= 0 or out_kept <= 0:
            return 0.0  # a removed layer (or one that never ran) costs nothing
        ins, outs, values = self._grids[name]
        by_in = np.array([np.interp(out_kept, outs, row) for row in values])
        return float(np.interp(in_kept, ins, by_in))

    def total_ms(self, widths: dict[str, tuple[float, float]]) -> float:
        """Sum of the layers' times at ``widths`` (layer -> (kept inputs per group, kept outputs))."""
        return sum(self.layer_ms(name, *widths[name]) for name in self._grids if name in widths)

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(COLUMNS))

    def to_records(self) -> list[dict]:
        return [dict(zip(COLUMNS, row, strict=True)) for row in self.rows]

    @classmethod
    def from_records(cls, records: list[dict]) -> LatencyTable:
        return cls([tuple(r[c] for c in COLUMNS) for r in records])


def load_or_measure_table(path: Path, model: nn.Module, example_input: torch.Tensor, **kwargs):
    """The table in ``path`` when present (a resumed run), else measured now and saved there."""
    import pandas as pd

    from autoprune._io import write_text

    if path.is_file():
        return LatencyTable.from_records(pd.read_csv(path).to_dict(orient="records"))
    table = measure_table(model, example_input, **kwargs)
    write_text(path, table.to_frame().to_csv(index=False))
    return table


def model_widths(model: nn.Module) -> dict[str, tuple[int, int]]:
    """(inputs per group, outputs) of every prunable layer of a (pruned) model, from its weights.

    >>> model_widths(nn.Sequential(nn.Linear(4, 3)))
    {'0': (4, 3)}
    """
    return {
        name: (int(m.weight.shape[1]), int(m.weight.shape[0]))
        for name, m in prunable_layers(model).items()
    }
