"""The per-layer latency table, the model calibrated on it, and the widths it is read at."""

from __future__ import annotations

import copy
import random

import pandas as pd
import pytest
import torch

from autoprune.budgets import (
    CostModel,
    LatencyTable,
    TableLatencyModel,
    fit_latency_models,
    measure_table,
    model_widths,
    sample_latencies,
)
from autoprune.policy import FinetuneRecipe, LayerPolicy, Policy
from autoprune.prune import Calibration, Pruner
from autoprune.tasks.models import FashionCNN, FashionResNet

EXAMPLE = torch.zeros(1, 1, 28, 28)


def test_the_table_interpolates_between_measured_widths_and_a_removed_layer_costs_nothing():
    """The arithmetic, on a table of known values (no timing involved)."""
    rows = [("a", i, o, 1.0 * i + 10.0 * o) for i in (2, 4) for o in (10, 20)]
    table = LatencyTable(rows + [("b", 1, 5, 3.0)])
    assert table.layer_ms("a", 3, 15) == pytest.approx(3 + 150)  # bilinear: exact on a plane
    assert table.layer_ms("a", 8, 40) == pytest.approx(4 + 200)  # clamped to the widest measured
    assert table.layer_ms("a", 0, 0) == 0.0 and table.layer_ms("unknown", 4, 20) == 0.0
    assert table.total_ms({"a": (4, 20), "b": (1, 5)}) == pytest.approx(207.0)
    again = LatencyTable.from_records(table.to_records())
    assert again.rows == table.rows


def test_measure_table_times_every_layer_over_the_widths_pruning_can_change():
    model = FashionCNN()
    free = CostModel(model, EXAMPLE).shrinkable()
    assert free["conv1"] == (False, True) and free["fc2"] == (True, False)
    table = measure_table(model, EXAMPLE, free=free, widths=(1.0, 0.5), batch_size=2, repeats=2)
    cells = table.to_frame().groupby("layer").size().to_dict()
    assert cells == {"conv1": 2, "conv2": 4, "fc1": 4, "fc2": 2}  # 2 widths per free dimension
    frame = table.to_frame()
    assert set(frame[frame.layer == "conv2"].out_kept) == {32, 64}
    assert (frame.ms > 0).all()


def _structured(cm: CostModel, rng: random.Random) -> Policy:
    ratio = {group: rng.choice([0.0, 0.25, 0.6]) for group in cm.groups}  # coupled layers agree
    layers = {
        name: LayerPolicy(granularity="structured", channel_ratio=ratio[group])
        for name, group in cm.layer_group.items()
    }
    return Policy(layers=layers, finetune=FinetuneRecipe(epochs=0))


@pytest.mark.parametrize("model_class", [FashionCNN, FashionResNet])
def test_the_widths_the_cost_model_predicts_are_those_of_the_pruned_model(model_class, digits_task):
    import dataclasses

    torch.manual_seed(0)
    model = model_class()
    task = dataclasses.replace(digits_task, example_input=EXAMPLE)
    cm, rng = CostModel(model, EXAMPLE), random.Random(3)
    for _ in range(3):
        policy = _structured(cm, rng)
        pruned = copy.deepcopy(model)
        Pruner(pruned, policy, calibration=Calibration.from_task(task)).step()
        assert cm.layer_widths(policy) == model_widths(pruned)


def test_the_table_model_is_fitted_on_samples_with_widths_and_skipped_without():
    model = FashionCNN()
    cm = CostModel(model, EXAMPLE)
    table = measure_table(
        model, EXAMPLE, free=cm.shrinkable(), widths=(1.0, 0.5, 0.25), batch_size=4, repeats=2
    )
    samples = sample_latencies(model, EXAMPLE, n_samples=8, batch_size=4, repeats=3)
    models = fit_latency_models(samples, list(cm.layers), table)
    assert list(models) == ["table", "macs"]  # the table's model is the one the search uses
    dense = models["table"].predict_model(model, EXAMPLE)
    assert dense > 0 and models["table"].n_samples_ == 8
    half = LayerPolicy(granularity="structured", channel_ratio=0.5)
    policy = Policy(layers=dict.fromkeys(cm.layer_group, half), finetune=FinetuneRecipe(epochs=0))
    assert models["table"].predict_policy(cm, policy) == pytest.approx(
        models["table"].predict_model(_pruned(model, policy), EXAMPLE)
    )
    old_run = samples[[c for c in samples.columns if ":" not in c]]  # recorded MACs only
    assert list(fit_latency_models(old_run, list(cm.layers), table)) == ["macs"]
    assert not TableLatencyModel.fits(old_run, table)


def test_the_table_model_recovers_latencies_that_are_its_table_sum():
    """The fit itself, on latencies that are a known function of the table (no timing)."""
    rows = [(n, 1, o, k * o) for n, k in (("a", 0.1), ("b", 0.3)) for o in (4, 8, 16)]
    table = LatencyTable(rows)
    rng = random.Random(0)
    samples = []
    for _ in range(16):
        widths = {"a": (1, rng.randint(4, 16)), "b": (1, rng.randint(4, 16))}
        ms = 0.5 + 2.0 * table.total_ms(widths)
        samples.append(
            {
                **{
                    f"{n}:{s}": w[i] for n, w in widths.items() for i, s in enumerate(("in", "out"))
                },
                "latency_ms": ms,
            }
        )
    model = TableLatencyModel(table).fit(pd.DataFrame(samples))
    assert model.holdout_error_ < 1e-6
    widths = {"a:in": 1, "a:out": 8, "b:in": 1, "b:out": 8}
    assert model.predict(widths) == pytest.approx(0.5 + 2.0 * (0.8 + 2.4))


def _pruned(model, policy):
    pruned = copy.deepcopy(model)
    Pruner(pruned, policy, calibration=Calibration(EXAMPLE)).step()
    return pruned


class _FixedConv(torch.nn.Conv2d):
    """A convolution whose constructor takes no widths: it cannot be rebuilt narrower."""

    def __init__(self) -> None:
        super().__init__(1, 4, 3)


def test_a_layer_that_cannot_be_rebuilt_narrower_keeps_its_dense_time_at_every_width():
    model = torch.nn.Sequential(_FixedConv(), torch.nn.Flatten(), torch.nn.Linear(4 * 26 * 26, 3))
    free = {"0": (False, True), "2": (True, False)}
    table = measure_table(model, EXAMPLE, free=free, widths=(1.0, 0.5), batch_size=2, repeats=2)
    frame = table.to_frame()
    assert frame[frame.layer == "0"][["in_kept", "out_kept"]].values.tolist() == [[1, 4]]
    assert len(frame[frame.layer == "2"]) == 2  # the linear layer is still timed at both widths
    assert table.layer_ms("0", 1, 2) == table.layer_ms("0", 1, 4) > 0


def test_both_latency_models_estimate_a_model_that_lost_a_block():
    """The recovery of a depth candidate estimates the shallower model's latency (no KeyError)."""
    from autoprune.prune.depth import prune_blocks

    model = FashionResNet(blocks=2).eval()
    cm = CostModel(model, EXAMPLE)
    table = measure_table(
        model, EXAMPLE, free=cm.shrinkable(), widths=(1.0, 0.5), batch_size=2, repeats=2
    )
    samples = sample_latencies(model, EXAMPLE, n_samples=8, batch_size=2, repeats=2)
    shallow = prune_blocks(copy.deepcopy(model), ["layers.1"], example_input=EXAMPLE).model
    assert set(model_widths(shallow)) < set(model_widths(model))
    for kind, latency_model in fit_latency_models(samples, list(cm.layers), table).items():
        dense, without = (latency_model.predict_model(m, EXAMPLE) for m in (model, shallow))
        assert 0 <= without <= dense and dense > 0, kind


def test_noisy_timings_never_give_a_negative_latency():
    """A free intercept fitted below zero would make a model with fewer layers take negative time."""
    import pandas as pd

    from autoprune.budgets import LatencyModel

    macs = [3e6 + 1e6 * i for i in range(8)]
    samples = pd.DataFrame({"conv": macs, "latency_ms": [2 * m / 1e6 - 5 for m in macs]})
    latency_model = LatencyModel(["conv"]).fit(samples)
    assert latency_model.regression_.intercept_ >= 0
    assert latency_model.predict({"conv": 0.0}) >= 0  # the layer's block removed
    assert latency_model.predict({"conv": 10e6}) > latency_model.predict({"conv": 3e6}) > 0


def test_a_small_variant_is_predicted_as_well_as_a_large_one_in_relative_terms():
    """Fitted on absolute errors, the large variants decide the line and the small ones
    (a search under a tight latency budget) come out 22% slower than measured."""
    import pandas as pd

    from autoprune.budgets import LatencyModel

    macs = [1e6, 2e6, 3e6, 50e6, 60e6, 70e6, 80e6, 90e6]
    measured = [0.4, 0.5, 0.6, 7.0, 8.0, 9.0, 10.0, 11.0]
    latency_model = LatencyModel(["conv"]).fit(pd.DataFrame({"conv": macs, "latency_ms": measured}))
    errors = [
        latency_model.predict({"conv": m}) / y - 1 for m, y in zip(macs, measured, strict=True)
    ]
    assert max(abs(e) for e in errors[:3]) < 0.06  # the small variants
    assert max(abs(e) for e in errors) < 0.08
