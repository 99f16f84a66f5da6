"""The flat export (the default): one row per pair, one plain value per cell, read by pandas."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from analysis.export import export_to_file, manifest_path, pseudonym
from analysis.export_flat import FIXED
from annotation import models as am
from judges import models as jm
from tests.analysis.test_export import audit  # noqa: F401  - the shared fixture

CLASSIFIER = "c" * 64


def _classify(audit: am.Audit) -> dict[int, str]:  # noqa: F811
    """Class every response of the audit; an older classifier says otherwise (not exported)."""
    classes: dict[int, str] = {}
    for k, item in enumerate(am.AuditItem.objects.filter(audit=audit).select_related("pair")):
        for side, response in (("a", item.pair.response_a), ("b", item.pair.response_b)):
            label = "ethical_refusal" if (k, side) == (1, "b") else "normal"
            jm.ResponseClassification.objects.create(
                response=response, classifier="0" * 64, label="technical_refusal", score=0.5
            )
            jm.ResponseClassification.objects.create(
                response=response, classifier=CLASSIFIER, label=label, score=0.9
            )
            classes[response.pk] = label
    return classes


def _not_json(value: Any) -> bool:
    if not isinstance(value, str) or value[:1] not in "[{":
        return True
    try:
        json.loads(value)
    except ValueError:
        return True
    return False


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_it_gives_pandas_the_columns_without_json(
    audit: am.Audit,  # noqa: F811
    tmp_path: Path,
    annotator: User,
    other_annotator: User,
    fmt: str,
) -> None:
    classes = _classify(audit)
    path = tmp_path / f"flat.{fmt}"
    result = export_to_file(audit_ids=[audit.pk], fmt=fmt, path=path)

    frame = {
        "parquet": pd.read_parquet,
        "csv": pd.read_csv,
        "jsonl": lambda p: pd.read_json(p, lines=True),
    }[fmt](path)

    first = pseudonym(annotator.pk, secret=settings.SECRET_KEY).replace("-", "_")
    second = pseudonym(other_annotator.pk, secret=settings.SECRET_KEY).replace("-", "_")
    judges = {f"judge_{name}_v1" for name in ("gpt_judge", "rm_judge")}
    wanted = {name for name, _ in FIXED} | {f"label_{first}", f"label_{second}"}
    wanted |= {f"{j}_{part}" for j in judges for part in ("ab", "ba", "combined", "margin")}
    wanted |= {"class_a", "class_b", "people_class_a", "people_class_b"}
    assert wanted <= set(frame.columns)
    assert result["schema"] == "flat" and len(frame) == result["counts"]["pairs"] == 3
    for column in frame.columns:  # no cell is a JSON object or list
        assert frame[column].map(_not_json).all(), column
    if fmt == "parquet":
        assert frame["adjudicated"].dtype == bool
        assert frame["inclusion_probability"].dtype == "float64"
        assert frame["label_count"].dtype == "int32"
        assert frame["judge_gpt_judge_v1_margin"].dtype == "float64"

    items = am.AuditItem.objects.filter(audit=audit).select_related(
        "pair__response_a", "pair__response_b"
    )
    by_key = frame.set_index("pair_id")
    for item in items:
        row = by_key.loc[item.pair.source_key]
        labels = {label.annotator_id: label.outcome for label in am.Label.objects.filter(item=item)}
        assert row[f"label_{first}"] == labels[annotator.pk]
        assert row[f"label_{second}"] == labels[other_annotator.pk]
        adjudication = am.Adjudication.objects.filter(item=item).first()
        assert bool(row["adjudicated"]) == (adjudication is not None)
        if adjudication is not None:
            assert row["final_label"] == adjudication.outcome
        elif labels[annotator.pk] == labels[other_annotator.pk]:
            assert row["final_label"] == labels[annotator.pk]
        else:
            assert row["final_label"] == "tie"
        assert row["stratum"] == item.stratum
        assert row["inclusion_probability"] == pytest.approx(item.inclusion_probability)
        assert row["weight"] == pytest.approx(1 / item.inclusion_probability)
        for verdict in jm.Verdict.objects.filter(pair=item.pair).select_related("judge"):
            prefix = f"judge_{verdict.judge.name.replace('-', '_')}_v1"
            for part, value in (
                ("ab", verdict.outcome_ab),
                ("ba", verdict.outcome_ba),
                ("combined", verdict.outcome),
            ):
                if value:
                    assert row[f"{prefix}_{part}"] == value
                else:
                    assert pd.isna(row[f"{prefix}_{part}"])
        assert row["class_a"] == classes[item.pair.response_a_id]
        assert row["class_b"] == classes[item.pair.response_b_id]
    manifest = json.loads(manifest_path(path).read_text())
    assert manifest["columns"]["classifier"] == CLASSIFIER
    assert set(manifest["columns"]["judge_columns"]) == {"gpt-judge v1", "rm-judge v1"}


def test_it_carries_peoples_final_classes_beside_the_classifiers(
    audit: am.Audit,  # noqa: F811
    tmp_path: Path,
) -> None:
    """People's classes come from the refusal instrument's `people_classes`: the annotators'
    strict majority (or a lead's decision); a response they disagree on stays empty."""
    item = am.AuditItem.objects.filter(audit=audit).select_related("pair").order_by("pk")[0]
    labels = list(am.Label.objects.filter(item=item).order_by("pk"))
    assert len(labels) == 2
    for label, class_b in zip(labels, ("normal", "technical_refusal"), strict=True):
        am.ResponseClassLabel.objects.create(
            label=label, side="A", response_class="ethical_refusal"
        )
        am.ResponseClassLabel.objects.create(label=label, side="B", response_class=class_b)

    export_to_file(audit_ids=[audit.pk], fmt="parquet", path=tmp_path / "f.parquet")

    frame = pd.read_parquet(tmp_path / "f.parquet").set_index("source_key")
    assert frame.loc[item.pair.source_key, "people_class_a"] == "ethical_refusal"
    assert frame["people_class_b"].isna().all()  # the two annotators disagree on B
    assert frame["people_class_a"].notna().sum() == 1


def test_it_downloads_flat_by_default_and_refuses_an_unknown_layout(
    audit: am.Audit,  # noqa: F811
    lead_client: Client,
) -> None:
    page = lead_client.get(f"/reports/audit/{audit.pk}/export.parquet")
    api = lead_client.get(f"/api/audits/{audit.pk}/export/", {"file_format": "csv"})
    bad = lead_client.get(f"/api/audits/{audit.pk}/export/", {"layout": "nested"})
    bad_page = lead_client.get(f"/reports/audit/{audit.pk}/export.csv?layout=nested")
    manifest = lead_client.get(f"/reports/audit/{audit.pk}/export/manifest.json?fmt=parquet")

    frame = pd.read_parquet(io.BytesIO(b"".join(page.streaming_content)))
    assert "final_label" in frame.columns and "meta" not in frame.columns
    rows = pd.read_csv(io.BytesIO(b"".join(api.streaming_content)))
    assert list(rows.columns) == list(frame.columns)
    assert bad.status_code == 400 and "layout" in bad.json()["detail"]
    assert bad_page.status_code == 400 and b"layout" in bad_page.content
    assert manifest.status_code == 200
    assert manifest.json()["schema"] == "flat"
    assert manifest.json()["counts"]["pairs"] == len(frame) == 3


def test_it_keeps_the_manifest_link_from_annotators(
    audit: am.Audit,  # noqa: F811
    annotator_client: Client,
) -> None:
    response = annotator_client.get(f"/reports/audit/{audit.pk}/export/manifest.json")
    assert response.status_code == 403
