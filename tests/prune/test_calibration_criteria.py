"""Wanda and FLAP: calibration-based criteria from the LLM pruning literature."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from autoprune.prune import Calibration, collect_statistics, get_criterion
from autoprune.prune.units import FeedForwardLayout, TransformerUnits, declare_layouts


def _data(n: int = 32):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=generator) * torch.tensor([0.1, 1, 2, 3, 4, 5]) + 1.0
    return x, torch.zeros(n, dtype=torch.long)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))


def _stats(model, needs):
    x, y = _data()
    data = TensorDataset(x, y)
    calibration = Calibration(x[:1], data, nn.CrossEntropyLoss(), batches=2, batch_size=16)
    layers = {"0": model[0], "2": model[2]}
    return collect_statistics(model, layers, calibration, needs=needs), x


def test_wanda_is_weight_magnitude_times_the_input_feature_norm():
    model = _model()
    stats, x = _stats(model, {"act_sq"})
    scores = get_criterion("wanda").weight_scores(model[0], stats["0"])
    norms = x.pow(2).mean(0).sqrt()  # the calibration batches cover the data once
    assert torch.allclose(scores, model[0].weight.detach().abs() * norms, rtol=1e-4)


def test_flap_is_squared_weight_times_the_input_feature_variance():
    model = _model()
    stats, x = _stats(model, {"act_var"})
    scores = get_criterion("flap").weight_scores(model[0], stats["0"])
    variance = x.var(0, unbiased=False)
    assert torch.allclose(scores, model[0].weight.detach().pow(2) * variance, rtol=1e-3)
    assert int(scores.sum(0).argmin()) == 0  # the feature that barely moves matters least


def test_flap_scores_neurons_by_the_layer_that_reads_them_only():
    model = _model()
    stats, _ = _stats(model, {"act_var"})
    units = TransformerUnits(declare_layouts(model, feed_forward=[FeedForwardLayout("0", "2")]))
    assert list(units.groups) == ["0"]
    scores = units.channel_scores("0", get_criterion("flap"), stats)
    expected = get_criterion("flap").weight_scores(model[2], stats["2"]).sum(0)
    assert torch.allclose(scores.float(), expected, rtol=1e-5)
    wanda = units.channel_scores("0", get_criterion("wanda"), _stats(model, {"act_sq"})[0])
    assert wanda.shape == (8,) and not torch.allclose(wanda.float(), expected)


@pytest.mark.parametrize("criterion", ["wanda", "flap"])
def test_the_calibration_criteria_rank_convolution_channels(criterion):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, groups=1)
    act = torch.rand(3)
    scores = get_criterion(criterion).weight_scores(conv, {"act_sq": act, "act_var": act})
    assert scores.shape == conv.weight.shape and (scores[:, 0] >= 0).all()
