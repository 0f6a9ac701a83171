"""Latency models: predict CPU latency of structured variants without running them.

Measuring every candidate is slow and noisy, so the search measures a sample
of structurally pruned variants of the dense model (random channel ratios per
dependency group) and fits a model to them with scikit-learn, reporting its
error on held-out samples:

- :class:`TableLatencyModel` (the default): a non-negative linear model of,
  per layer, ``t_l`` (its time at the candidate's widths in a measured
  per-layer table, :mod:`autoprune.budgets._latency_table`) and its MACs per
  kept input (the output activations the operations around it touch);
- :class:`LatencyModel`: a non-negative linear model ``latency = a + sum_l b_l
  * MACs_l`` (what the search used before the table; kept for comparison).

Candidates that reach the report are measured. Unstructured and N:M sparsity
do not change the features: on a CPU with dense kernels they do not make a
model faster.

Example:
    >>> import pandas as pd
    >>> samples = pd.DataFrame({"a": [1e6, 2e6, 3e6, 4e6], "b": [1e6, 1e6, 2e6, 2e6],
    ...                         "latency_ms": [2.0, 3.0, 5.0, 6.0]})
    >>> model = LatencyModel(["a", "b"]).fit(samples)
    >>> round(model.predict({"a": 2e6, "b": 2e6}), 2)
    4.0
"""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from autoprune.budgets._latency_table import LatencyTable, model_widths
from autoprune.introspect import measure_latency, profile_model

if TYPE_CHECKING:  # pandas is imported where a table is made: importing budgets stays light
    import pandas as pd


def _non_negative_fit(x: np.ndarray, y: np.ndarray, *, relative: bool = True):
    """A linear regression with non-negative coefficients and intercept: no prediction below 0.

    It minimises the squared *relative* error (each sample weighted by ``1 / y**2``;
    ``relative=False``: the absolute error, for comparison):
    fitted on absolute errors, the largest variants decide the line and a small
    variant's latency is overestimated by a fifth, so a search under a tight
    latency budget prunes more than it must. Noisy timings can pull a free
    intercept below zero, and a model with fewer layers (features at 0) would then
    be predicted to take negative time: the fit is then made through the origin.
    """
    from sklearn.linear_model import LinearRegression

    weights = 1.0 / np.square(np.maximum(y, 1e-9)) if relative else None
    fit = LinearRegression(positive=True).fit(x, y, sample_weight=weights)
    return (
        fit
        if fit.intercept_ >= 0
        else LinearRegression(positive=True, fit_intercept=False).fit(x, y, sample_weight=weights)
    )


class _LinearFit:
    """A non-negative linear regression of ``latency_ms`` on features of the samples."""

    kind = ""

    def _matrix(self, rows) -> np.ndarray:
        raise NotImplementedError

    def fit(
        self, samples: pd.DataFrame, *, holdout: float = 0.25, seed: int = 0, relative: bool = True
    ):
        """Fit on ``samples`` (features plus ``latency_ms``); the held-out error first.

        ``relative=False`` fits the absolute error instead (see :func:`_non_negative_fit`).
        """
        from sklearn.model_selection import train_test_split

        rows = samples.to_dict(orient="records")
        x, y = self._matrix(rows), samples["latency_ms"].to_numpy(float)
        self.holdout_error_ = float("nan")
        if len(rows) >= 8 and holdout > 0:
            x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=holdout, random_state=seed)
            probe = _non_negative_fit(x_tr, y_tr, relative=relative)
            self.holdout_error_ = float(np.mean(np.abs(probe.predict(x_te) - y_te) / y_te))
        self.regression_ = _non_negative_fit(x, y, relative=relative)
        self.n_samples_ = len(rows)
        return self

    def predict(self, features: dict) -> float:
        """Predicted latency (ms) of a variant with these features."""
        return float(self.regression_.predict(self._matrix([features]))[0])


class LatencyModel(_LinearFit):
    """``latency_ms`` as a non-negative linear function of per-layer MACs (in millions)."""

    kind = "macs"

    def __init__(self, layers: list[str]) -> None:
        self.layers = list(layers)

    def _matrix(self, rows) -> np.ndarray:
        # a layer missing from a row executes nothing: it was inside a block the model lost
        return np.array([[float(r.get(name, 0.0)) / 1e6 for name in self.layers] for r in rows])

    def predict_policy(self, cost_model, policy) -> float:
        """Predicted latency of ``policy`` on the dense model of ``cost_model``."""
        return self.predict(cost_model.structural_macs(policy))

    def predict_model(self, model: nn.Module, example_input: torch.Tensor) -> float:
        """Predicted latency of a (pruned) model, from its structural MACs."""
        return self.predict(_features(model, example_input))


class TableLatencyModel(_LinearFit):
    """``latency_ms`` as a non-negative linear function of, per layer, its time in the table at
    the variant's widths and its MACs per kept input (a proxy for the output activations the
    norms, activations and pooling around it touch: on a CPU they are much of the time)."""

    kind = "table"

    def __init__(self, table: LatencyTable) -> None:
        self.table = table

    def _matrix(self, rows) -> np.ndarray:
        out = []
        for row in rows:
            features = []
            for name in self.table.layers:
                w_in, w_out = float(row.get(f"{name}:in", 0)), float(row.get(f"{name}:out", 0))
                macs = float(row.get(name, 0.0))
                features.append(self.table.layer_ms(name, w_in, w_out))
                features.append(macs / w_in / 1e6 if w_in > 0 else 0.0)
            out.append(features)
        return np.array(out)

    @staticmethod
    def fits(samples: pd.DataFrame, table: LatencyTable) -> bool:
        """Whether ``samples`` record the widths this model needs (older runs recorded MACs only)."""
        return all(f"{name}:out" in samples for name in table.layers)

    def predict_policy(self, cost_model, policy) -> float:
        """Predicted latency of ``policy`` on the dense model of ``cost_model``."""
        return self.predict(
            {**cost_model.structural_macs(policy), **_columns(cost_model.layer_widths(policy))}
        )

    def predict_model(self, model: nn.Module, example_input: torch.Tensor) -> float:
        """Predicted latency of a (pruned) model, from the widths and MACs of its layers."""
        return self.predict(_features(model, example_input))


def _features(model: nn.Module, example_input: torch.Tensor) -> dict:
    """A model's row as the samples record it: each layer's MACs, ``name:in`` and ``name:out``."""
    macs = {layer.name: layer.macs for layer in profile_model(model, example_input).layers}
    return {**macs, **_columns(model_widths(model))}


def _columns(widths: dict[str, tuple[int, int]]) -> dict[str, int]:
    """``name:in`` and ``name:out`` columns (as the samples record them) of layer -> (in, out)."""
    return {
        f"{name}:{side}": width
        for name, (w_in, w_out) in widths.items()
        for side, width in (("in", w_in), ("out", w_out))
    }


def sample_latencies(
    model: nn.Module,
    example_input: torch.Tensor,
    *,
    n_samples: int = 24,
    batch_size: int = 64,
    threads: int = 1,
    repeats: int = 20,
    seed: int = 0,
) -> pd.DataFrame:
    """Measure ``n_samples`` random structured variants of ``model`` (the dense model first)."""
    import pandas as pd

    from autoprune.prune import structured_units

    rng = random.Random(seed)
    rows = []
    for i in range(n_samples):
        variant = copy.deepcopy(model)
        if i > 0:
            pruner = structured_units(variant, example_input)
            uniform = rng.uniform(0.0, 0.9) if i % 3 == 0 else None
            for group, channels in pruner.original_channels.items():
                ratio = uniform if uniform is not None else rng.uniform(0.0, 0.9)
                n_remove = min(channels - 1, int(round(ratio * channels)))
                pruner.remove(group, list(range(n_remove)))
        features = _features(variant, example_input)
        stats = measure_latency(
            variant,
            example_input,
            batch_size=batch_size,
            threads=threads,
            repeats=repeats,
            warmup=3,
        )
        rows.append({**features, "latency_ms": stats.median_ms})
    return pd.DataFrame(rows)


def load_or_sample(
    path: Path, model: nn.Module, example_input: torch.Tensor, **kwargs
) -> pd.DataFrame:
    """Samples from ``path`` when present (a resumed run), else measured now and saved there."""
    import pandas as pd

    from autoprune._io import write_text

    if path.is_file():
        return pd.read_csv(path)
    samples = sample_latencies(model, example_input, **kwargs)
    write_text(path, samples.to_csv(index=False))
    return samples


def fit_latency_models(
    samples: pd.DataFrame, layers: list[str], table: LatencyTable | None
) -> dict[str, LatencyModel | TableLatencyModel]:
    """Every latency model the samples allow, by kind; the table model first when it fits.

    >>> import pandas as pd
    >>> samples = pd.DataFrame({"a": [1e6, 2e6], "latency_ms": [1.0, 2.0]})
    >>> list(fit_latency_models(samples, ["a"], None))
    ['macs']
    """
    models: dict[str, LatencyModel | TableLatencyModel] = {}
    if table is not None and TableLatencyModel.fits(samples, table):
        models["table"] = TableLatencyModel(table).fit(samples)
    models["macs"] = LatencyModel(layers).fit(samples)
    return models
