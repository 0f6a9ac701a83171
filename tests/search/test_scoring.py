"""The search's working copy: every candidate is built from the dense weights, whatever came before it."""

from __future__ import annotations

import pytest
import torch

from autoprune.policy import Policy
from autoprune.search import search
from autoprune.search._scoring import CandidateScorer

SPACE = {
    "granularities": ["unstructured", "structured"],
    "criteria": ["l1"],
    "schedules": ["one-shot"],
    "levels": [1.0],
    "recovery": {"epochs": 0.05, "top": 1},
    "sensitivity": {"enabled": False},
}


@pytest.fixture(scope="module")
def context(conv_task, tmp_path_factory):
    out = tmp_path_factory.mktemp("scoring") / "run"
    return search(conv_task, "params=0.5", space=SPACE, n_trials=2, out=out, progress=False).context


def _weights(built) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in built.model.state_dict().items()}


def test_a_structured_candidate_after_an_unstructured_one_starts_from_the_dense_weights(context):
    unstructured = Policy.uniform(["conv1", "conv2", "conv3", "fc1", "fc2"], 0.7)
    structured = Policy.uniform(["conv3", "fc1"], 0.5, granularity="structured")
    alone = _weights(CandidateScorer(context).build(structured))
    scorer = CandidateScorer(context)
    first = _weights(scorer.build(unstructured))
    after = _weights(scorer.build(structured))  # the working copy held the unstructured candidate
    assert after.keys() == alone.keys()
    assert all(torch.equal(after[k], alone[k]) for k in alone)
    assert torch.equal(alone["conv1.weight"], context.dense.conv1.weight)  # not pruned by it
    again = _weights(scorer.build(unstructured))
    assert all(torch.equal(again[k], first[k]) for k in first)
    assert (first["conv1.weight"] == 0).float().mean() > 0.6
