"""A decoder language model: a small LLaMA-layout transformer predicting the next character.

The model is Hugging Face's ``LlamaForCausalLM`` built from a small config with
random weights (grouped-query attention: 4 query heads over 2 key/value heads,
a gate/up/down feed-forward block), trained from scratch on the sentences of
CPython's own documentation (:mod:`autoprune.tasks.sentences`). Tokens are
characters: printable ASCII, the newline that separates sentences, and one
token for any other character; nothing is downloaded. Each split's sentences
are joined into one text and cut into windows of :data:`CONTEXT` characters.
The metric is *next-token accuracy* (higher is better): the fraction of
positions whose most likely next character is the right one.

``llama_docs_task(tiny=True, train_size=64, val_size=16, test_size=16)`` builds
the version the tests use.

Example:
    >>> ids = encode("Hi\\n"); ids.tolist(), decode(ids)
    ([40, 73, 95], 'Hi\\n')
    >>> outputs = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]]); targets = torch.tensor([[1, 1]])
    >>> next_token_accuracy(outputs, targets)
    0.5
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from autoprune.errors import TaskError
from autoprune.tasks._task import Task
from autoprune.tasks.sentences import sentence_splits

CONTEXT = 64  # characters per window
ALPHABET = "".join(chr(c) for c in range(32, 127)) + "\n"
UNKNOWN = len(ALPHABET)
VOCAB_SIZE = len(ALPHABET) + 1
BLOCKS = ("llama.model.layers",)  # what budgets count: the transformer blocks


def encode(text: str) -> torch.Tensor:
    """Character ids of ``text`` (:data:`UNKNOWN` for a character outside :data:`ALPHABET`)."""
    index = {c: i for i, c in enumerate(ALPHABET)}
    return torch.tensor([index.get(c, UNKNOWN) for c in text], dtype=torch.long)


def decode(ids: torch.Tensor) -> str:
    """The text of character ids (``?`` for :data:`UNKNOWN`)."""
    return "".join(ALPHABET[i] if i < UNKNOWN else "?" for i in ids.tolist())


def windows(sentences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-character targets, (N, CONTEXT) each, from the sentences joined by newlines."""
    ids = encode("\n".join(sentences) + "\n")
    n = (len(ids) - 1) // CONTEXT
    if n < 1:
        raise TaskError(f"The text of {len(sentences)} sentences is too short for one window.")
    inputs = ids[: n * CONTEXT].view(n, CONTEXT)
    targets = ids[1 : n * CONTEXT + 1].view(n, CONTEXT)
    return inputs, targets


class CharLlama(nn.Module):
    """A LLaMA-layout decoder over characters: (N, L) int64 ids -> (N, L, VOCAB_SIZE) logits."""

    hidden, layers, heads, kv_heads, ffn = 64, 2, 4, 2, 192

    def __init__(self) -> None:
        super().__init__()
        try:
            from transformers import LlamaConfig, LlamaForCausalLM
        except ImportError as exc:
            raise TaskError(
                "The llama-docs task needs the 'transformers' extra: pip install 'autoprune[transformers]'."
            ) from exc
        config = LlamaConfig(
            vocab_size=VOCAB_SIZE,
            hidden_size=self.hidden,
            intermediate_size=self.ffn,
            num_hidden_layers=self.layers,
            num_attention_heads=self.heads,
            num_key_value_heads=self.kv_heads,
            max_position_embeddings=CONTEXT,
            tie_word_embeddings=False,
            bos_token_id=None,
            eos_token_id=None,
            pad_token_id=None,
        )
        self.llama = LlamaForCausalLM(config)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.llama(input_ids=ids, use_cache=False).logits


class TinyCharLlama(CharLlama):
    """The tests' version: one block, 32 features."""

    hidden, layers, ffn = 32, 1, 64


def next_token_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every position's next character."""
    return F.cross_entropy(outputs.flatten(0, -2), targets.flatten())


def next_token_accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of positions whose most likely next character is right (higher is better)."""
    return float((outputs.argmax(-1) == targets).float().mean())


def llama_docs_task(
    *,
    train_size: int = 2000,
    val_size: int = 400,
    test_size: int = 400,
    split_seed: int = 0,
    tiny: bool = False,
) -> Task:
    """The character-level LLaMA on CPython's documentation sentences (sizes in sentences)."""
    train, val, test = sentence_splits(
        train=train_size, val=val_size, test=test_size, seed=split_seed
    )
    build = TinyCharLlama if tiny else CharLlama
    train_data = windows(train)
    return Task(
        name="llama-docs-tiny" if tiny else "llama-docs",
        build_model=build,
        train_data=train_data,
        val_data=windows(val),
        test_data=windows(test),
        metric=next_token_accuracy,
        loss=next_token_loss,
        example_input=train_data[0][:1],
        epochs=2 if tiny else 20,
        lr=3e-3,
        batch_size=64,
        split_seed=split_seed,
        cost_modules=BLOCKS,
        description="character-level LLaMA (grouped-query attention) on CPython's docs; "
        "next-token accuracy",
    )
