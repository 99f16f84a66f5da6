"""Majority vote tie-break rules and Dawid-Skene annotator reliability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.metrics import dawid_skene, majority_vote

VOTES = pd.DataFrame(
    [
        ("clear", "ann", "A"),
        ("clear", "bob", "A"),
        ("clear", "cy", "B"),
        ("split", "ann", "A"),
        ("split", "bob", "B"),
        ("alone", "cy", "tie"),
    ],
    columns=["item", "rater", "value"],
)


def test_it_takes_the_most_common_verdict() -> None:
    labels = majority_vote(VOTES)
    assert labels.loc["clear", "label"] == "A"
    assert labels.loc["clear", "support"] == pytest.approx(2 / 3)
    assert labels.loc["clear", "decided_by"] == "majority"
    assert labels.loc["alone", "label"] == "tie"


def test_it_breaks_a_shared_top_count_by_the_chosen_rule() -> None:
    assert majority_vote(VOTES, tie_break="tie").loc["split", "label"] == "tie"
    unresolved = majority_vote(VOTES, tie_break="none").loc["split"]
    assert unresolved["label"] is None or pd.isna(unresolved["label"])
    assert unresolved["decided_by"] == "unresolved"
    assert majority_vote(VOTES, tie_break="first").loc["split", "label"] == "A"
    assert (
        majority_vote(VOTES, tie_break="first", categories=["B", "tie", "A"]).loc["split", "label"]
        == "B"
    )
    picks = {
        majority_vote(VOTES, tie_break="random", seed=s).loc["split", "label"] for s in range(20)
    }
    assert picks == {"A", "B"}
    again = majority_vote(VOTES, tie_break="random", seed=3)
    assert again.equals(majority_vote(VOTES, tie_break="random", seed=3))


def test_an_adjudicated_label_overrides_the_vote() -> None:
    labels = majority_vote(VOTES, adjudicated={"clear": "B"})
    assert labels.loc["clear", "label"] == "B"
    assert labels.loc["clear", "decided_by"] == "adjudicated"
    with pytest.raises(ValueError, match="adjudicated label 'C' of item 'split'"):
        majority_vote(VOTES, adjudicated={"split": "C"})


def _crowd(n_items: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Four careful annotators (80% right) and one who answers at random."""
    rng = np.random.default_rng(seed)
    classes = np.array(["A", "tie", "B"])
    truth = rng.choice(3, size=n_items, p=[0.4, 0.2, 0.4])
    rows = []
    for rater in ["careful-1", "careful-2", "careful-3", "careful-4", "random"]:
        if rater == "random":
            answer = rng.integers(0, 3, size=n_items)
        else:
            wrong = (truth + rng.integers(1, 3, size=n_items)) % 3
            answer = np.where(rng.random(n_items) < 0.8, truth, wrong)
        seen = rng.random(n_items) < 0.8
        rows.append(
            pd.DataFrame(
                {"item": np.flatnonzero(seen), "rater": rater, "value": classes[answer[seen]]}
            )
        )
    return pd.concat(rows, ignore_index=True), classes[truth]


def test_dawid_skene_finds_the_annotator_who_answers_at_random() -> None:
    votes, _ = _crowd(600, seed=0)
    model = dawid_skene(votes)
    assert model.converged
    assert model.accuracy.idxmin() == "random"
    assert model.accuracy["random"] == pytest.approx(1 / 3, abs=0.08)
    for rater in ["careful-1", "careful-2", "careful-3", "careful-4"]:
        assert model.accuracy[rater] == pytest.approx(0.8, abs=0.06)
        assert np.diag(model.confusion[rater].to_numpy()).min() > 0.65
    random_rows = model.confusion["random"].to_numpy()
    assert random_rows == pytest.approx(np.full((3, 3), 1 / 3), abs=0.1)
    assert model.posterior.sum(axis=1).to_numpy() == pytest.approx(1.0)


def test_dawid_skene_labels_beat_the_majority_vote() -> None:
    votes, truth = _crowd(600, seed=1)
    model = dawid_skene(votes)
    majority = majority_vote(votes, tie_break="first")
    truth_by_item = pd.Series(truth)
    ds_accuracy = (model.labels == truth_by_item[model.labels.index]).mean()
    mv_accuracy = (majority["label"] == truth_by_item[majority.index]).mean()
    assert ds_accuracy >= mv_accuracy
    assert ds_accuracy > 0.85


def test_dawid_skene_keeps_adjudicated_labels() -> None:
    votes, _ = _crowd(200, seed=2)
    item = votes["item"].iloc[0]
    model = dawid_skene(votes, adjudicated={item: "tie"})
    assert model.labels[item] == "tie"
    assert model.posterior.loc[item, "tie"] == 1.0
