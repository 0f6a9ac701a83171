from __future__ import annotations

import torch

from autoprune.introspect import measure_latency, profile_model, prunable_layers
from autoprune.tasks.models import DigitsMLP, FashionCNN, FashionResNet

IMAGE = torch.zeros(1, 1, 28, 28)


def test_fashion_cnn_counts_are_exact():
    profile = profile_model(FashionCNN(), IMAGE)
    assert profile.params == 421_642
    by_name = {layer.name: layer for layer in profile.layers}
    assert by_name["conv1"].macs == 28 * 28 * 32 * 1 * 9
    assert by_name["conv2"].macs == 14 * 14 * 64 * 32 * 9
    assert by_name["fc1"].macs == 3136 * 128 and by_name["fc2"].macs == 128 * 10
    assert profile.macs == 4_241_152
    assert profile.bytes == 421_642 * 4
    assert [layer.params for layer in profile.layers] == [320, 18_496, 401_536, 1_290]


def test_resnet_counts_include_batchnorm_and_shortcuts():
    model = FashionResNet()
    profile = profile_model(model, IMAGE)
    assert profile.params == sum(p.numel() for p in model.parameters())
    assert 200_000 < profile.params < 1_000_000
    assert "layers.1.shortcut.0" in prunable_layers(model)
    # BatchNorm parameters are in the total but not in a prunable layer
    assert profile.params > sum(layer.params for layer in profile.layers)
    # buffers (running statistics) are part of the bytes
    assert profile.bytes > profile.params * 4


def test_nonzero_counts_follow_zeroed_weights():
    model = DigitsMLP()
    with torch.no_grad():
        model.fc1.weight[:, :32] = 0.0
    profile = profile_model(model, torch.zeros(1, 64))
    fc1 = profile.layers[0]
    assert fc1.nonzero_params == fc1.params - 128 * 32
    assert fc1.nonzero_macs == fc1.macs // 2
    assert profile.nonzero_params == profile.params - 128 * 32


def test_profile_frame_shares_sum_to_one_over_prunable_layers():
    frame = profile_model(FashionCNN(), IMAGE).to_frame()
    assert list(frame.layer) == ["conv1", "conv2", "fc1", "fc2"]
    assert abs(frame.param_share.sum() - 1.0) < 1e-9
    assert abs(frame.mac_share.sum() - 1.0) < 1e-9


def test_latency_reports_its_conditions_and_restores_threads():
    before = torch.get_num_threads()
    stats = measure_latency(FashionCNN(), IMAGE, batch_size=8, threads=1, repeats=7, warmup=2)
    assert torch.get_num_threads() == before
    assert stats.batch_size == 8 and stats.threads == 1 and stats.repeats == 7
    assert 0 < stats.p10_ms <= stats.median_ms <= stats.p90_ms
    assert stats.iqr_ms >= 0


def test_inspect_cli_prints_the_fashion_cnn_totals(capsys):
    from autoprune.cli import main

    assert main(["inspect", "--task", "fashion-cnn", "--repeats", "5", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    assert "Parameters:   421,642" in out
    assert "MACs:         4,241,152" in out
    assert "Bytes (fp32): 1,686,568" in out
    assert "batch 64, 1 thread" in out
