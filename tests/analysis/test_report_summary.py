"""The report's one-screen summary and its folded slices, on real stored snapshots.

The snapshots are the report JSON that ``bench/figures_unchanged.py`` keeps in
``bench/figures_baseline/``: the PandaLM test set (999 pairs, 3 annotators, 2 judges), the
demo audit over it, and the planted study (a 20-point ethical-refusal gap, bench/simulation.py).
Pure: no database.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analysis import report_summary
from analysis.display import display_name, display_text
from analysis.metrics.outcomes import result_json
from analysis.metrics.position import position_report
from analysis.report_summary import MIN_SLICE_ITEMS, Figure
from analysis.snapshot import Result, SliceRow, metrics_parse

BASELINE = Path(__file__).resolve().parents[2] / "bench" / "figures_baseline"


def stored(name: str) -> dict[str, Any]:
    """A stored snapshot's metrics, with the rater ids the baseline strips put back."""
    metrics = json.loads((BASELINE / f"{name}.json").read_text())["metrics"]
    for judge in metrics["raters"]["judges"]:
        judge["id"] = f"j:{judge['judge_id']}"
    for human in metrics["raters"]["humans"]:
        human.setdefault("id", f"h:{human['name']}")
    return metrics


def summary(metrics: dict[str, Any], **kwargs: Any) -> Any:
    """The summary of stored JSON, read as the typed snapshot first."""
    return report_summary.summary(metrics_parse(metrics), **kwargs)


def slices_folded(rows: list[dict[str, Any]], judges: list[str], **kwargs: Any) -> Any:
    kept, other = report_summary.slices_folded(
        [SliceRow.model_validate(r) for r in rows], judges, **kwargs
    )
    return [row.as_json() for row in kept], other


def figure(result: dict[str, Any] | None) -> Figure:
    return Figure.of(None if result is None else Result.model_validate(result))


def finding(result: Any, kind: str) -> Any:
    return next(f for f in result.findings if f.kind == kind)


def test_it_states_the_planted_refusal_gap_with_its_interval() -> None:
    metrics = stored("planted")
    gap = metrics["studies"]["refusal"]["gaps"]["j:3"]["rows"][0]["gap"]
    assert metrics["studies"]["refusal"]["gaps"]["j:3"]["rows"][0]["class"] == "ethical_refusal"

    refusal = finding(summary(metrics), "refusal")

    assert refusal.status == "finding" and refusal.conclusive
    low, high = 100 * gap["ci"][0], 100 * gap["ci"][1]
    assert low < 20.0 < high  # the planted gap (judge 30% vs people 10%) is inside
    assert f"rewards ethical refusals {100 * gap['value']:.1f} points more than people" in (
        refusal.sentence
    )
    assert f"95% CI +{low:.1f} to +{high:.1f}" in refusal.sentence
    assert "p < 0.001" in refusal.sentence and f"{gap['n']:,} pairs" in refusal.sentence
    assert refusal.size == pytest.approx(100 * gap["value"])


def test_it_calls_a_gap_whose_interval_spans_zero_inconclusive() -> None:
    metrics = stored("pandalm")  # PandaLM's two judges: both gaps negative, both spanning 0
    gaps = {
        judge: next(r["gap"] for r in fit["rows"] if r["class"] == "ethical_refusal")
        for judge, fit in metrics["studies"]["refusal"]["gaps"].items()
    }
    assert all(g["ci"][0] < 0 < g["ci"][1] for g in gaps.values())
    largest = max(gaps, key=lambda judge: abs(gaps[judge]["value"]))
    label = next(j["label"] for j in metrics["raters"]["judges"] if j["id"] == largest)

    refusal = finding(summary(metrics), "refusal")

    assert refusal.status == "inconclusive" and not refusal.conclusive
    assert refusal.sentence.startswith(f"Inconclusive: {label} ")
    assert "the interval spans 0" in refusal.sentence
    value = 100 * gaps[largest]["value"]
    assert f"\u2212{abs(value):.1f} points" in refusal.sentence
    assert "Of 2 judge versions measured, 0 have an interval that excludes 0." in (refusal.sentence)
    assert " more than people" not in refusal.sentence  # no invented finding


def test_it_orders_findings_clear_ones_first_then_by_size() -> None:
    metrics = stored("pandalm")

    result = summary(metrics)

    # Length: both judges weigh it less than people, intervals below 0 (a finding); the
    # refusal gap spans 0 (inconclusive); no verdicts in both orders (not measured).
    assert [f.kind for f in result.findings] == ["style", "refusal", "position"]
    assert [f.status for f in result.findings] == ["finding", "inconclusive", "not measured"]
    style = result.findings[0]
    nets = {
        judge: next(r["net"] for r in fit["rows"] if r["feature"] == "length")
        for judge, fit in metrics["studies"]["style"]["sensitivity"].items()
    }
    largest = max(nets, key=lambda judge: abs(nets[judge]["value"]))
    label = next(j["label"] for j in metrics["raters"]["judges"] if j["id"] == largest)
    assert style.sentence.startswith(f"{label} rewards longer answers less than people do")
    assert f"{100 * nets[largest]['value']:.1f}".replace("-", "\u2212") in style.sentence
    assert "Of 2 judge versions measured, 2 have an interval that excludes 0." in style.sentence
    assert result.findings[2].sentence == "Not measured: verdicts ran in one order only."


def test_it_reads_position_bias_from_verdicts_in_both_orders() -> None:
    # A judge that keeps the first slot: on 40 of 300 pairs it picks whichever response is
    # shown first (A in the original order, B once swapped: mapped back, A then B).
    rng = np.random.default_rng(5)
    n = 300
    first = rng.choice(["A", "B"], size=n)
    swapped = first.copy()
    first[:40], swapped[:40] = "A", "B"
    report = position_report(first, swapped, n_boot=400, seed=1)
    primacy, recency = report.primacy, report.recency
    metrics = stored("pandalm")
    metrics["position"]["judges"]["j:1"] = {
        "method": "both_orders",
        "consistency": result_json(report.consistency),
        "fairness": result_json(report.fairness),
        "n": report.n,
    }

    position = finding(summary(metrics), "position")

    fairness = 100 * (recency - primacy) / n  # Shi et al.: (recency - primacy) / n
    assert primacy == 40 and recency == 0
    assert position.status == "finding"
    assert "favours the response shown first" in position.sentence
    assert f"preference fairness \u2212{abs(fairness):.1f} points" in position.sentence
    assert f"survives the swap on {100 * (n - 40) / n:.1f}%" in position.sentence
    assert position.size == pytest.approx(abs(fairness), abs=1e-3)  # JSON keeps 6 digits


def test_it_gives_each_judge_version_its_gate_agreement_and_the_ceiling() -> None:
    metrics = stored("audit")
    figures = metrics["figures"]["S1"]

    result = summary(metrics, gate={"j:1": "INCONCLUSIVE"})

    assert [line.gate for line in result.judges] == ["INCONCLUSIVE", None]
    first = result.judges[0]
    stored_agreement = figures["judges"]["j:1"]["vs_humans"]["percent_agreement"]
    assert first.agreement.value == pytest.approx(stored_agreement["value"])
    assert (first.agreement.low, first.agreement.high) == tuple(stored_agreement["ci"])
    assert result.ceiling_kappa.value == pytest.approx(figures["ceiling"]["cohen_kappa"]["value"])
    # The demo audit's 100 items hold no ethical refusal: not measured, the reason in words.
    assert first.refusal_gap.value is None
    assert first.refusal_gap.reason == "no ethical refusal responses among the rated pairs"


def test_it_says_not_measured_when_the_study_is_missing() -> None:
    metrics = stored("audit")
    metrics = copy.deepcopy(metrics)
    metrics["studies"] = {"refusal": {"reason": "no response classes: run the classifier"}}

    result = summary(metrics)

    refusal = finding(result, "refusal")
    assert refusal.status == "not measured" and refusal.size is None
    assert refusal.sentence == "Not measured: no response classes: run the classifier."
    assert result.findings[-1].status == "not measured"


def test_a_figure_spanning_zero_is_not_clear() -> None:
    assert figure({"value": 0.1, "ci": [-0.01, 0.2]}).excludes_zero is False
    assert figure({"value": -0.1, "ci": [-0.2, -0.01]}).excludes_zero is True
    assert figure({"value": 0.1}).excludes_zero is False  # no interval, no claim
    assert figure(None).reason == "not computed"


# --- folded slices --------------------------------------------------------------------------


def test_pooling_every_slice_gives_the_overall_agreement() -> None:
    # Model pairs partition PandaLM's 999 items, so folding them all must give back the
    # whole set's agreement, which the engine computed on its own.
    metrics = stored("pandalm")
    rows = metrics["slices"]["model_pair"]["rows"]
    judges = [j["id"] for j in metrics["raters"]["judges"]]
    assert sum(r["items"] for r in rows) == 999

    kept, other = slices_folded(rows, judges, min_items=10**6)

    assert kept == [] and other is not None
    assert other.items == 999 and other.slices == len(rows)
    for policy in ("S1", "S2"):
        overall = metrics["figures"][policy]
        assert other.ceiling[policy].value == pytest.approx(
            overall["ceiling"]["percent_agreement"]["value"], abs=2e-6
        )
        for judge in judges:
            assert other.judges[judge][policy].value == pytest.approx(
                overall["judges"][judge]["vs_humans"]["percent_agreement"]["value"], abs=2e-6
            )
        assert other.judges[judges[0]]["kappa_S1"].value is None  # n only: not poolable


def test_it_folds_slices_under_the_minimum_into_one_row() -> None:
    metrics = stored("audit")  # 38 categories over 100 items, most with 1-8 items
    rows = metrics["slices"]["category"]["rows"]
    judges = [j["id"] for j in metrics["raters"]["judges"]]

    kept, other = slices_folded(rows, judges)

    small = [r for r in rows if r["items"] < MIN_SLICE_ITEMS]
    assert MIN_SLICE_ITEMS == 10
    assert all(r["items"] >= MIN_SLICE_ITEMS for r in kept)
    assert len(kept) + len(small) == len(rows)
    assert other is not None and other.slices == len(small)
    assert other.items == sum(r["items"] for r in small)
    measured = [r["judges"]["j:1"]["S1"] for r in small]
    measured = [result for result in measured if result["value"] is not None]
    assert len(measured) > 1
    comparisons = sum(result["details"]["pairs"] for result in measured)
    agreements = sum(result["value"] * result["details"]["pairs"] for result in measured)
    assert other.judges["j:1"]["S1"].value == pytest.approx(agreements / comparisons)
    assert other.judges["j:1"]["kappa_S1"].n == sum(
        r["judges"]["j:1"]["kappa_S1"]["n"] for r in small
    )


def test_nothing_is_folded_when_every_slice_is_large() -> None:
    rows = stored("pandalm")["slices"]["model_pair"]["rows"]  # 89-111 items each

    kept, other = slices_folded(rows, ["j:1", "j:2"])

    assert kept == rows and other is None


# --- display names --------------------------------------------------------------------------


def test_display_names_cover_strata_outcomes_and_classes() -> None:
    assert display_name("ethics_refusal") == "ethics refusal"
    assert display_name("low_margin") == "low margin"
    assert display_name("both_bad") == "both bad"
    assert display_name("ethical_disclaimer / normal") == "ethical disclaimer / normal"
    assert display_name("Gmail") == "Gmail" and display_name(7) == 7
    assert (
        display_text("undecided on stratum=low_margin; no ethical_refusal responses")
        == "undecided on stratum=low margin; no ethical refusal responses"
    )
    # Gate-rule syntax is code a person typed: left as written.
    assert display_text("interval(refusal_gap.ethical_refusal)") == (
        "interval(refusal_gap.ethical_refusal)"
    )


# --- the page, from PandaLM's stored snapshot -------------------------------------------------


@pytest.mark.django_db
def test_the_dataset_page_reads_top_down_from_the_stored_snapshot(lead_client: Any) -> None:
    from analysis import services
    from analysis.models import MetricSnapshot
    from corpus.models import Dataset

    metrics = stored("pandalm")
    for index, human in enumerate(metrics["raters"]["humans"]):
        human["id"] = f"u:{index}"
    dataset = Dataset.objects.create(name="pandalm-stored")
    MetricSnapshot.objects.create(
        dataset=dataset,
        metrics=metrics,
        counts={"watermark": services.watermark_for(dataset=dataset)},  # current: no recompute
        label_count=2997,
    )

    content = lead_client.get(f"/reports/dataset/{dataset.name}/").content.decode()

    assert content.index('id="summary"') < content.index('id="contents"')
    assert content.index('id="contents"') < content.index('id="agreement"')
    assert "Release gate" not in content[: content.index('id="contents"')]  # no gate here
    # The refusal gap of PandaLM's judges spans 0: said so, with the numbers.
    judge = "pandalm-7b \u00b7 pandalm v1"
    assert f"Inconclusive: {judge} rewards ethical refusals \u22129.1 points" in content
    # Categories under 10 items fold into one row: 50 categories, 999 items.
    small = [r for r in metrics["slices"]["category"]["rows"] if r["items"] < MIN_SLICE_ITEMS]
    assert small
    items = sum(r["items"] for r in small)
    assert f"other (n = {items} items in {len(small)} slices)" in content
    # Display names: the response-class slices in words, and no stored code in the text.
    assert "ethical disclaimer / normal" in content
    assert "ethical_disclaimer / normal" not in content
    assert ">normal / technical_refusal<" not in content
