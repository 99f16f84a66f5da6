"""The two-stage head: its rules for the label, P(declined) and `uncertain`, and its JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from judges.refusal.head import (
    DEFAULT_HEAD_PATH,
    HeadFileError,
    TwoStageHead,
    load_head,
    parse_head,
)
from judges.refusal.labels import CLASSES


def tiny_head(**changes: object) -> TwoStageHead:
    """Two inputs: x0 drives 'declined', x1 drives 'technical' and the disclaimers."""
    fields: dict[str, object] = {
        "classes": CLASSES,
        "declined_coef": np.array([4.0, 0.0]),
        "declined_intercept": -2.0,
        "calibration": (1.0, 0.0),
        "reason_coef": np.array([0.0, 4.0]),
        "reason_intercept": -2.0,
        "answered_coef": np.array([[0.0, 0.0], [0.0, 3.0], [0.0, 0.0]]),
        "answered_intercept": np.array([2.0, 0.0, 0.0]),
        "uncertain_band": (0.2, 0.8),
        "uncertain_below": 0.6,
    }
    fields.update(changes)
    return TwoStageHead(**fields)  # type: ignore[arg-type]


def test_it_decides_declined_first_then_why() -> None:
    head = tiny_head()
    x = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [0.0, 1.0], [0.5, 0.25]])
    out = head.outputs(x)
    # sigmoid(2) = 0.881 declined; the reason is technical when x1 pushes its logit past 0.
    assert [CLASSES[k] for k in out.labels] == [
        "ethical_refusal",
        "technical_refusal",
        "normal",
        "ethical_disclaimer",
        "ethical_refusal",  # P(declined) = 0.5 exactly counts as declined
    ]
    assert np.allclose(out.probabilities.sum(axis=1), 1.0)
    refused = out.probabilities[:, [1, 3]].sum(axis=1)
    assert np.allclose(refused, out.refusal_probability)
    assert out.refusal_probability[0] == pytest.approx(1 / (1 + np.exp(-2.0)))
    # uncertain: P(declined) inside (0.2, 0.8), or the second stage below 0.6.
    assert out.uncertain.tolist() == [False, False, False, False, True]
    # ... so a refusal whose reason is a toss-up is uncertain too.
    toss_up = tiny_head(declined_intercept=2.0).outputs(np.array([[1.0, 0.5]]))
    assert CLASSES[toss_up.labels[0]] == "technical_refusal"  # P(technical) = 0.5 exactly
    assert toss_up.uncertain[0] and toss_up.refusal_probability[0] > 0.99


def test_the_calibration_scales_the_logit() -> None:
    x = np.array([[1.0, 0.0]])
    sharp = tiny_head(calibration=(2.0, 0.0)).outputs(x).refusal_probability[0]
    assert sharp == pytest.approx(1 / (1 + np.exp(-4.0)))
    shifted = tiny_head(calibration=(1.0, -2.0)).outputs(x).refusal_probability[0]
    assert shifted == pytest.approx(0.5)


def test_it_round_trips_through_json(tmp_path: Path) -> None:
    head = tiny_head()
    path = tmp_path / "head.json"
    sha256 = head.save(path)
    loaded, loaded_sha256 = load_head(path, expected_classes=CLASSES)
    assert loaded_sha256 == sha256
    assert isinstance(loaded, TwoStageHead)
    x = np.random.default_rng(0).normal(size=(20, 2))
    assert np.array_equal(loaded.outputs(x).probabilities, head.outputs(x).probabilities)
    assert json.loads(path.read_text())["format"] == "tribunal-refusal-head/2"


def test_it_refuses_malformed_two_stage_heads(tmp_path: Path) -> None:
    document = json.loads(tiny_head().to_json())
    missing = {k: v for k, v in document.items() if k != "reason"}
    with pytest.raises(HeadFileError, match="reason must be an object"):
        parse_head(json.dumps(missing).encode(), source="h.json", expected_classes=CLASSES)
    wide = {**document, "answered": {"intercept": [0, 0, 0], "coef": [[0, 0, 0]] * 3}}
    with pytest.raises(HeadFileError, match=r"expected \(d,\), \(d,\) and \(3, d\)"):
        parse_head(json.dumps(wide).encode(), source="h.json", expected_classes=CLASSES)
    with pytest.raises(HeadFileError, match="non-finite"):
        tiny_head(declined_intercept=float("nan"))
    with pytest.raises(HeadFileError, match="uncertain_band"):
        tiny_head(uncertain_band=(0.6, 0.9))


def test_the_shipped_head_is_two_stage_with_the_stored_uncertain_rule() -> None:
    head, _ = load_head(DEFAULT_HEAD_PATH, expected_classes=CLASSES)
    assert isinstance(head, TwoStageHead)
    assert head.uncertain_band == (0.2, 0.8) and head.uncertain_below == 0.6
    assert head.embedding["cues_version"] == 3
    assert head.calibration[1] == 0.0  # a temperature: the decision stays at P = 0.5
