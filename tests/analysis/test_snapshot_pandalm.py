"""The PandaLM test set (3 annotators, 2 judges on 999 pairs), imported with the real files.

Checks against figures published with the data (WeOpenML/PandaLM README: the label
distribution 105 tie / 422 response 1 / 472 response 2, and each two annotators' Cohen's
kappa 0.85, 0.88, 0.86), against scikit-learn, and against plain counts over the raw JSON.
"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from sklearn.metrics import cohen_kappa_score

from analysis import services
from analysis.models import MetricSnapshot
from corpus.models import Dataset
from tests.shared_rows import SharedRows

DATA = Path("/work/shared/data/pandalm")
FILES = ["testset-v1.json", "gpt-3.5-turbo-testset-v1.json", "pandalm-7b-testset-v1.json"]
VOTE = {0: "tie", 1: "A", 2: "B"}
RESULT = {"0": "tie", "tie": "tie", "1": "A", "2": "B"}  # "Tie" occurs; "garbage" does too

pytestmark = pytest.mark.skipif(
    not all((DATA / name).exists() for name in FILES), reason="PandaLM files not available"
)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    items = json.loads((DATA / FILES[0]).read_text())
    judges = {name: json.loads((DATA / name).read_text()) for name in FILES[1:]}
    return {"items": items, "judges": judges}


def imported_snapshot() -> Any:
    from corpus.importers.services import dataset_for_import, import_file

    dataset = dataset_for_import(name="pandalm")
    for name in FILES:
        job = import_file(dataset=dataset, fmt="pandalm", path=DATA / name)
        assert job.counts.get("rows") == 999, job.errors
    return services.snapshot_compute(dataset=Dataset.objects.get(name="pandalm"), n_boot=200)


@pytest.fixture
def _snapshot_rows(shared_rows: SharedRows, django_db_setup: None) -> Any:
    return shared_rows.get("pandalm", imported_snapshot)  # once for the tests that read it


@pytest.fixture
def snapshot(_snapshot_rows: Any, db: None) -> Any:
    return MetricSnapshot.objects.get(pk=_snapshot_rows.pk)


def test_it_reproduces_the_published_label_distribution(snapshot: Any) -> None:
    majority = snapshot.metrics["consensus"]["majority"]

    assert majority["labels"] == {"tie": 105, "A": 422, "B": 472}
    assert majority["decided_by"] == {"majority": 999}


def test_it_reproduces_the_published_annotator_kappas(snapshot: Any, raw: dict[str, Any]) -> None:
    published = {("1", "2"): 0.85, ("1", "3"): 0.88, ("2", "3"): 0.86}
    pairs = {
        (p["a"][-1], p["b"][-1]): p["cohen_kappa"]
        for p in snapshot.metrics["figures"]["S1"]["human_pairs"]
    }
    assert set(pairs) == set(published)
    for (first, second), kappa in pairs.items():
        a = [x[f"annotator{first}"] for x in raw["items"]]
        b = [x[f"annotator{second}"] for x in raw["items"]]
        assert kappa["value"] == pytest.approx(cohen_kappa_score(a, b), abs=1e-6)
        assert round(kappa["value"], 2) == published[(first, second)]
        assert kappa["ci"][0] < kappa["value"] < kappa["ci"][1]


def test_it_counts_judge_agreement_like_the_raw_files(snapshot: Any, raw: dict[str, Any]) -> None:
    labels = {x["idx"]: [VOTE[x[f"annotator{k}"]] for k in (1, 2, 3)] for x in raw["items"]}
    judges = {j["model_id"]: j["id"] for j in snapshot.metrics["raters"]["judges"]}
    for name, rows in raw["judges"].items():
        field = next(k for k in rows[0] if k.endswith("_result"))
        verdicts = {r["idx"]: RESULT.get(str(r[field]).strip().lower()) for r in rows}
        figures = {
            p: snapshot.metrics["figures"][p]["judges"][judges[name.split("-testset")[0]]]
            for p in ("S1", "S2")
        }
        agree = {"S1": [0, 0], "S2": [0, 0], "majority": [0, 0]}
        for idx, votes in labels.items():
            mine = verdicts.get(idx)
            if mine is None:  # an unparseable verdict is left out
                continue
            for vote in votes:
                agree["S1"][0] += mine == vote
                agree["S1"][1] += 1
                if "tie" not in (mine, vote):
                    agree["S2"][0] += mine == vote
                    agree["S2"][1] += 1
            top = max(set(votes), key=votes.count)
            majority = top if votes.count(top) > 1 else "tie"
            agree["majority"][0] += mine == majority
            agree["majority"][1] += 1
        for policy in ("S1", "S2"):
            stored = figures[policy]["vs_humans"]["percent_agreement"]
            assert stored["value"] == pytest.approx(agree[policy][0] / agree[policy][1], abs=1e-6)
        stored = figures["S1"]["vs_majority"]["percent_agreement"]
        assert stored["value"] == pytest.approx(
            agree["majority"][0] / agree["majority"][1], abs=1e-6
        )


def test_it_gives_a_ceiling_above_both_judges(snapshot: Any) -> None:
    figures = snapshot.metrics["figures"]["S1"]
    ceiling = figures["ceiling"]["percent_agreement"]
    for judge in figures["judges"].values():
        assert judge["vs_humans"]["percent_agreement"]["ci"][1] < ceiling["ci"][0]
    people = [h["id"] for h in snapshot.metrics["raters"]["humans"]]
    assert len(list(combinations(people, 2))) == len(figures["human_pairs"]) == 3
