"""Attention heads and feed-forward neurons of every layout: detected from the modules' own fields."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autoprune.errors import PruningError
from autoprune.policy import Policy
from autoprune.prune import Calibration, Pruner
from autoprune.prune.units import (
    AttentionLayout,
    ChannelUnits,
    FeedForwardLayout,
    HeadPrunedMultiheadAttention,
    TransformerUnits,
    convert_conv1d,
    declare_layouts,
    find_layouts,
    replay_history,
    structured_units,
)

X = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(0))


def _halve(units) -> None:
    for group in units.groups:
        n = units.channels(group)
        units.remove(group, range(0, n, 2))


def _replays(build, x, units, model) -> bool:
    torch.manual_seed(1)
    fresh = build().eval()
    replay_history(fresh, x[:1], units.history)
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        return torch.allclose(fresh(x), model(x), atol=1e-5)


# --------------------------------------------------------------------------- nn.MultiheadAttention


def _encoder():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, 32, batch_first=True, dropout=0.0)
    return nn.Sequential(
        nn.TransformerEncoder(layer, 2, enable_nested_tensor=False), nn.Linear(16, 3)
    ).eval()


def test_multihead_attention_loses_whole_heads_and_keeps_running_and_reloading():
    model = _encoder()
    units = structured_units(model, X[:1])
    unit = "0.layers.0.self_attn.out_proj"
    assert type(units) is TransformerUnits and units.original_channels[unit] == 4
    assert units.groups[unit].in_layers == (unit,) and units.groups[unit].in_factors == (4,)
    _halve(units)
    attention = model[0].layers[0].self_attn
    assert isinstance(attention, HeadPrunedMultiheadAttention) and attention.num_heads == 2
    assert attention.in_proj_weight.shape == (3 * 8, 16) and attention.out_proj.in_features == 8
    assert model[0].layers[1].linear1.out_features == 16
    assert model(X).shape == (2, 5, 3)
    assert _replays(_encoder, X, units, model)


def test_a_head_pruned_multihead_attention_computes_what_the_kept_heads_compute():
    torch.manual_seed(0)
    attention = nn.MultiheadAttention(8, 4, batch_first=True).eval()
    x = torch.randn(2, 3, 8)
    units = TransformerUnits(attention)
    units.remove("out_proj", [1, 2])
    q, k, v = F.linear(x, attention.in_proj_weight, attention.in_proj_bias).split(4, -1)
    heads = [t.view(2, 3, 2, 2).transpose(1, 2) for t in (q, k, v)]
    expected = F.scaled_dot_product_attention(*heads).transpose(1, 2).reshape(2, 3, 4)
    out, weights = attention(x, x, x, need_weights=True)
    assert torch.allclose(out, attention.out_proj(expected), atol=1e-6)
    assert weights.shape == (2, 3, 3)
    mask = torch.tensor([[False, False, True], [False, False, False]])
    masked, _ = attention(x, x, x, key_padding_mask=mask, need_weights=False)
    assert torch.isfinite(masked).all() and not torch.allclose(masked[0], out[0])


# --------------------------------------------------------------------------- timm's fused qkv


class FusedAttention(nn.Module):
    """timm's ``Attention``: one ``qkv`` layer, ``num_heads``/``head_dim``/``attn_dim`` fields."""

    def __init__(self, dim: int = 16, heads: int = 4) -> None:
        super().__init__()
        self.num_heads, self.head_dim, self.attn_dim = heads, dim // heads, dim
        self.qkv = nn.Linear(dim, 3 * dim)
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, _ = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(*qkv.unbind(0)).transpose(1, 2)
        x = self.norm(x.reshape(b, n, self.attn_dim))
        return self.proj(x)


class WindowAttention(FusedAttention):
    """Swin's window attention: the head size comes from the input width, so heads cannot go."""

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, attention: type[nn.Module] = FusedAttention) -> None:
        super().__init__()
        self.attn = attention()
        self.mlp = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Dropout(0.0), nn.Linear(32, 16))

    def forward(self, x):
        x = x + self.attn(x)
        return x + self.mlp(x)


def _blocks():
    torch.manual_seed(0)
    return nn.Sequential(Block(), Block()).eval()


def test_a_fused_qkv_projection_loses_query_key_and_value_rows_of_each_head():
    model = _blocks()
    units = structured_units(model, X[:1])
    assert list(units.groups) == ["0.attn.qkv", "0.mlp.0", "1.attn.qkv", "1.mlp.0"]
    group = units.groups["0.attn.qkv"]
    assert group.out_layers == ("0.attn.qkv",) and group.out_factor("0.attn.qkv") == 12
    before = model[0].attn.qkv.weight.detach().clone()
    units.remove("0.attn.qkv", [1])
    attention = model[0].attn
    assert (attention.num_heads, attention.attn_dim) == (3, 12)
    rows = [r for r in range(48) if (r % 16) // 4 != 1]
    assert torch.equal(attention.qkv.weight, before[rows])
    assert attention.norm.normalized_shape == (12,) and attention.proj.in_features == 12
    _halve(units)
    assert model(X).shape == X.shape and _replays(_blocks, X, units, model)


def test_a_block_whose_forward_breaks_without_a_head_is_left_out_with_a_note():
    torch.manual_seed(0)
    model = nn.Sequential(Block(WindowAttention)).eval()
    units = structured_units(model, X[:1])
    assert list(units.groups) == ["0.mlp.0"]
    assert len(units.notes) == 1 and "WindowAttention" in units.notes[0]
    assert "'0.attn'" in units.notes[0] and "breaks the block" in units.notes[0]


# --------------------------------------------------------------------------- declared layouts


class OwnAttention(nn.Module):
    """An attention no detector knows: grouped-query ``wq/wk/wv/wo`` and no head fields."""

    def __init__(self) -> None:
        super().__init__()
        self.wq, self.wk, self.wv = nn.Linear(16, 16), nn.Linear(16, 8), nn.Linear(16, 8)
        self.wo = nn.Linear(16, 16)

    def forward(self, x):
        b, n, _ = x.shape
        q = self.wq(x).view(b, n, -1, 4).transpose(1, 2)
        k, v = (t.view(b, n, -1, 4).transpose(1, 2) for t in (self.wk(x), self.wv(x)))
        k, v = (t.repeat_interleave(q.shape[1] // k.shape[1], 1) for t in (k, v))
        return self.wo(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, -1))


OWN = AttentionLayout("wq", "wk", "wv", "wo", heads=4, kv_heads=2, head_dim=4, block="")


def _own():
    torch.manual_seed(0)
    return declare_layouts(OwnAttention().eval(), attention=[OWN])


def test_a_declared_grouped_query_layout_removes_a_key_value_head_with_its_query_heads():
    assert find_layouts(OwnAttention()) == ({}, {})
    model = _own()
    units = structured_units(model, X[:1])
    assert units.original_channels == {"wq": 2}
    assert units.groups["wq"].out_factors == (8, 4, 4) and units.groups["wq"].unit_size == 8
    before = model.wq.weight.detach().clone()
    units.remove("wq", [0])
    assert torch.equal(model.wq.weight, before[8:])
    assert (model.wk.out_features, model.wv.out_features, model.wo.in_features) == (4, 4, 8)
    assert model(X).shape == X.shape and _replays(_own, X, units, model)
    with pytest.raises(PruningError, match="all 1 heads"):
        units.remove("wq", [0])


def test_a_declaration_naming_a_missing_layer_is_refused():
    with pytest.raises(PruningError, match="layer 'nope'"):
        declare_layouts(OwnAttention(), feed_forward=[FeedForwardLayout(up="nope", down="wo")])


def test_a_layout_with_query_heads_not_a_multiple_of_key_value_heads_is_refused():
    with pytest.raises(PruningError, match="heads a multiple of kv_heads"):
        AttentionLayout("q", "k", "v", "o", heads=4, kv_heads=3, head_dim=2, block="")


def test_a_pruner_removes_heads_of_a_declared_layout_by_policy():
    model = _own()
    l1 = [
        float(
            model.wq.weight.detach()[8 * u : 8 * u + 8].abs().sum()
            + model.wk.weight.detach()[4 * u : 4 * u + 4].abs().sum()
            + model.wv.weight.detach()[4 * u : 4 * u + 4].abs().sum()
            + model.wo.weight.detach()[:, 8 * u : 8 * u + 8].abs().sum()
        )
        for u in range(2)
    ]
    policy = Policy.uniform(["wq"], 0.5, granularity="structured")
    pruner = Pruner(model, policy, calibration=Calibration(X[:1]))
    pruner.step()
    weakest = min(range(2), key=l1.__getitem__)
    assert model.wk.out_features == 4 and [e.removed for e in pruner.history] == [(weakest,)]


# --------------------------------------------------------------------------- Hugging Face families

transformers = pytest.importorskip("transformers")


class Encoder(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        out = (
            self.model(x, use_cache=False)
            if "Causal" in type(self.model).__name__
            else self.model(x)
        )
        return out.logits if hasattr(out, "logits") else out.last_hidden_state


def _hf(name: str) -> nn.Module:
    T = transformers
    small = {"num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64}
    decoder = {**small, "vocab_size": 50, "hidden_size": 32, "num_key_value_heads": 2}
    configs = {
        "bert": lambda: T.BertModel(T.BertConfig(vocab_size=50, hidden_size=32, **small)),
        "roberta": lambda: T.RobertaModel(T.RobertaConfig(vocab_size=50, hidden_size=32, **small)),
        "distilbert": lambda: T.DistilBertModel(
            T.DistilBertConfig(vocab_size=50, dim=32, n_layers=2, n_heads=4, hidden_dim=64)
        ),
        "gpt2": lambda: convert_conv1d(
            T.GPT2LMHeadModel(
                T.GPT2Config(
                    vocab_size=50, n_embd=32, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0
                )
            )
        ),
        "llama": lambda: T.LlamaForCausalLM(T.LlamaConfig(**decoder)),
        "qwen2": lambda: T.Qwen2ForCausalLM(T.Qwen2Config(**decoder)),
        "vit": lambda: T.ViTModel(
            T.ViTConfig(hidden_size=32, image_size=16, patch_size=8, **small)
        ),
    }
    torch.manual_seed(0)
    return Encoder(configs[name]()).eval()


IDS = torch.randint(3, 50, (2, 7), generator=torch.Generator().manual_seed(0))
FAMILIES = {
    "bert": ("model.encoder.layer.0.attention.self.query", 4),
    "roberta": ("model.encoder.layer.0.attention.self.query", 4),
    "distilbert": ("model.transformer.layer.0.attention.q_lin", 4),
    "gpt2": ("model.transformer.h.0.attn.c_attn", 4),
    "llama": ("model.model.layers.0.self_attn.q_proj", 2),  # grouped-query: 2 key/value heads
    "qwen2": ("model.model.layers.0.self_attn.q_proj", 2),
    "vit": ("model.layers.0.attention.q_proj", 4),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_hugging_face_family_loses_heads_and_neurons_and_reloads(family):
    x = torch.randn(2, 3, 16, 16) if family == "vit" else IDS
    model = _hf(family)
    units = structured_units(model, x[:1])
    unit, heads = FAMILIES[family]
    assert type(units) is TransformerUnits and units.notes == []
    assert units.original_channels[unit] == heads and len(units.groups) == 4
    _halve(units)
    assert model(x).shape[:2] == x.shape[:2] or family == "vit"
    assert _replays(lambda: _hf(family), x, units, model)


def test_gpt2_conv1d_layers_become_linear_layers_whose_checkpoints_still_load():
    raw = _hf("gpt2").model
    T = transformers
    original = T.GPT2LMHeadModel(raw.config).eval()
    original.load_state_dict(raw.state_dict())  # Conv1D layout in, Conv1D layout out
    assert type(raw.transformer.h[0].attn.c_attn).__name__ == "TransposedLinear"
    assert type(original.transformer.h[0].attn.c_attn).__name__ == "Conv1D"
    with torch.no_grad():
        assert torch.allclose(original(IDS).logits, raw(IDS).logits, atol=1e-5)
    with pytest.raises(
        PruningError, match=r"Conv1D layers \(e.g. 'model.transformer.h.0.attn.c_attn'\)"
    ):
        structured_units(Encoder(original), IDS[:1])


def test_a_llama_model_is_never_traced_channel_by_channel(monkeypatch):
    """The dependency search through its rotary embedding never settled; heads and neurons need none."""

    def no_trace(*args, **kwargs):
        raise AssertionError("traced")

    monkeypatch.setattr(ChannelUnits, "__init__", no_trace)
    units = structured_units(_hf("llama"), IDS[:1])
    assert sorted(units.original_channels.values()) == [2, 2, 64, 64]


def test_a_task_declares_layouts_on_every_model_it_builds():
    from autoprune.builders import builder_path
    from autoprune.errors import TaskError
    from autoprune.tasks import Task

    data = (torch.randn(8, 5, 16), torch.zeros(8, 5, 16))
    task = Task(
        name="own-attention",
        build_model=OwnAttention,
        train_data=data,
        val_data=data,
        test_data=data,
        metric=lambda out, y: 0.0,
        loss=nn.MSELoss(),
        attention=[OWN],
    )
    for model in (task.new_model(), task.build_model()):
        assert structured_units(model, X[:1]).original_channels == {"wq": 2}
    assert builder_path(task.build_model).endswith("test_layouts:OwnAttention")
    with pytest.raises(TaskError, match="'attention' field must be a list of AttentionLayout"):
        Task(**{**vars(task), "build_model": OwnAttention, "attention": ["wq"]})
