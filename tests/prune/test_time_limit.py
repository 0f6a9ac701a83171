"""Finding structured units never hangs: time limits, parts left out with a note, one-line errors."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

import autoprune.prune.units._channels as channels
from autoprune.errors import PruningError
from autoprune.prune.units import ChannelUnits, structured_units, time_limit


def test_an_inner_limit_never_outlives_the_outer_one_and_the_outer_is_rearmed():
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="outer took more than 0.3 s"):
        with time_limit(0.3, "outer"):
            with time_limit(5.0, "inner"):
                pass
            while True:
                pass
    assert time.monotonic() - start < 2.0


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_a_timeout_swallowed_while_the_code_runs_on_is_raised_again():
    """Python swallows an error raised inside a finaliser (garbage collected mid-loop)."""
    swallowed = []
    with pytest.raises(TimeoutError, match="spinning took more than 0.05 s"):
        with time_limit(0.05, "spinning"):
            try:
                _spin(60.0)
            except TimeoutError as exc:
                swallowed.append(exc)  # as a finaliser would: the loop goes on
            _spin(60.0)  # ends by the limit's next error, long before 60 s
    assert len(swallowed) == 1
    _spin(0.2)  # the limit is gone: nothing raises after the block


def test_finding_units_past_its_limit_is_one_line_naming_the_model_and_what_to_do(monkeypatch):
    def spin(self, model, example_input):
        while True:
            pass

    monkeypatch.setattr(ChannelUnits, "__init__", spin)
    with pytest.raises(PruningError) as error:
        structured_units(
            nn.Sequential(nn.Linear(2, 4), nn.Linear(4, 1)), torch.zeros(1, 2), seconds=0.3
        )
    message = str(error.value)
    assert "\n" not in message and "Sequential took more than 0.3 s" in message
    assert "unstructured or N:M granularity" in message


def test_an_untraceable_model_names_the_module_where_tracing_failed():
    class Broken(nn.Module):
        def forward(self, x):
            return x.view(-1, 0)

    model = nn.Sequential(nn.Linear(4, 8), Broken())
    model[1].dummy = nn.Linear(1, 1)
    with pytest.raises(PruningError, match=r"at module '1' \(Broken\)"):
        ChannelUnits(model, torch.zeros(1, 4))


transformers = pytest.importorskip("transformers")


class _Llama(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        config = transformers.LlamaConfig(
            vocab_size=50,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
        self.model = transformers.LlamaForCausalLM(config)

    def forward(self, x):
        return self.model(x, use_cache=False).logits


def test_channels_whose_dependency_search_never_settles_are_left_out_and_the_rest_kept(
    monkeypatch,
):
    """Grouped-query attention's key/value repetition sends torch-pruning's search in circles."""
    monkeypatch.setattr(channels, "GROUP_SECONDS", 0.5)
    units = ChannelUnits(_Llama().eval(), torch.randint(0, 50, (1, 7)))
    assert list(units.groups) == [
        "model.model.layers.0.self_attn.o_proj",
        "model.model.layers.0.mlp.gate_proj",
    ]
    left_out = sorted(note.split("'")[1] for note in units.notes)
    assert left_out == [f"model.model.layers.0.self_attn.{p}_proj" for p in "kqv"]
    assert all("took more than 0.5 s" in note for note in units.notes)


def test_the_overall_limit_is_not_mistaken_for_one_layer_s(monkeypatch):
    import torch_pruning as tp

    def spin(*args, **kwargs):
        while True:
            pass

    monkeypatch.setattr(tp.DependencyGraph, "get_pruning_group", spin)
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    with pytest.raises(PruningError, match="took more than 0.3 s"):
        structured_units(model, torch.zeros(1, 2), seconds=0.3)
