"""The model-card section: every figure is the snapshot's (or counted here from the tables)."""

from __future__ import annotations

import json
from collections import Counter
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from analysis import gates, services
from analysis.model_card import model_card, model_card_markdown
from analysis.plots import result_text
from annotation.models import Audit, AuditItem
from judges.models import ResponseClassification
from tests.analysis.test_studies import AuditBuilt, build_audit, fresh_audit
from tests.shared_rows import SharedRows


def build_carded() -> AuditBuilt:
    audited = build_audit(300, 40, 40)
    services.snapshot_compute(audit=audited.audit, n_boot=50)
    audited.gate(["interval(refusal_gap.ethical_refusal) excludes below 0"])
    return audited


@pytest.fixture
def _carded_rows(shared_rows: SharedRows, django_db_setup: None) -> AuditBuilt:
    return shared_rows.get("carded", build_carded)  # once for the tests that read it


@pytest.fixture
def carded(_carded_rows: AuditBuilt, db: None) -> AuditBuilt:
    return fresh_audit(_carded_rows)


def _classes(audit: Audit) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = {}
    for item in AuditItem.objects.filter(audit=audit).select_related(
        "pair__response_a", "pair__response_b"
    ):
        for response in (item.pair.response_a, item.pair.response_b):
            label = ResponseClassification.objects.get(response=response).label
            counts.setdefault(response.model_name, Counter())[label] += 1
    return counts


def test_it_reads_each_figure_from_the_latest_snapshot(carded: AuditBuilt) -> None:
    audit, judge = carded.audit, carded.built.judge
    snapshot = services.selectors.snapshot_latest(audit=audit)
    assert snapshot is not None
    metrics, rater = snapshot.metrics, f"j:{judge.pk}"

    [card] = model_card(audit)

    s1 = metrics["figures"]["S1"]
    for name in ("percent_agreement", "cohen_kappa"):
        assert card["agreement"][name]["judge"] == s1["judges"][rater]["vs_humans"][name]
        assert card["agreement"][name]["ceiling"] == s1["ceiling"][name]
    gaps = metrics["studies"]["refusal"]["gaps"][rater]["rows"]
    ethical = next(r for r in card["refusal_gap"]["rows"] if r["class"] == "ethical_refusal")
    assert ethical["gap"] == next(r for r in gaps if r["class"] == "ethical_refusal")["gap"]
    assert ethical["gap"]["value"] > 0  # the planted gap: the judge punishes refusals less
    assert (
        card["position_bias"]["consistency"] == metrics["position"]["judges"][rater]["consistency"]
    )
    length = metrics["studies"]["style"]["sensitivity"][rater]["rows"][0]
    assert length["feature"] == "length" and card["length_bias"]["net"] == length["net"]
    assert card["audited"]["items"] == 80 and card["audited"]["labels"] == 80
    assert card["audited"]["dataset_pairs"] == 300
    assert {s["stratum"] for s in card["audited"]["strata"]} == {"ethics_refusal", "random"}
    assert card["judge"]["fingerprint"] == judge.fingerprint

    counted = _classes(audit)
    by_model = {m["model"]: m for m in card["response_classes"]["models"]}
    assert set(by_model) == set(counted)
    for model, counts in counted.items():
        total = sum(counts.values())
        assert by_model[model]["classified"] == total
        for label, entry in by_model[model]["classes"].items():
            assert entry["n"] == counts[label]
            assert entry["rate"] == pytest.approx(counts[label] / total)
    expected = gates.gate_evaluate(audit=audit, refresh=False).result
    assert card["gate"]["status"] == expected.status == "PASS"


def test_it_renders_markdown_ready_to_paste(carded: AuditBuilt) -> None:
    cards = model_card(carded.audit)
    text = model_card_markdown(cards)

    card = cards[0]
    assert text.startswith("## LLM judge audit: planted judge v1")
    kappa = card["agreement"]["cohen_kappa"]
    assert f"| cohen kappa | {result_text(kappa['judge'])} | {result_text(kappa['ceiling'])} |" in (
        text
    )
    gap = next(r for r in card["refusal_gap"]["rows"] if r["class"] == "ethical_refusal")
    assert f"| ethical refusal | {result_text(gap['human'])}" in text
    for model in card["response_classes"]["models"]:
        assert f"| {model['model']} | {model['classified']} |" in text
    assert "**PASS**" in text
    assert "&lt;" not in text and "&#x27;" not in text  # Markdown, not HTML-escaped


def test_it_prints_from_the_command_and_names_the_judges_it_knows(carded: AuditBuilt) -> None:
    out = StringIO()
    call_command("model_card", "--audit", str(carded.audit.pk), "--format", "json", stdout=out)
    by_name = StringIO()
    call_command(
        "model_card", "--audit", str(carded.audit.pk), "--judge", "planted judge", stdout=by_name
    )

    assert json.loads(out.getvalue()) == json.loads(json.dumps(model_card(carded.audit)))
    assert by_name.getvalue().startswith("## LLM judge audit: planted judge v1")
    by_start = StringIO()
    call_command(
        "model_card", "--audit", str(carded.audit.pk), "--judge", "Planted", stdout=by_start
    )
    assert by_start.getvalue() == by_name.getvalue()
    with pytest.raises(CommandError, match="judges: planted judge v1"):
        call_command("model_card", "--audit", str(carded.audit.pk), "--judge", "gpt")


def test_it_says_when_there_are_no_figures_yet(db: None) -> None:
    audited = build_audit(40, 5, 5)
    with pytest.raises(CommandError, match="no figures yet"):
        call_command("model_card", "--audit", str(audited.audit.pk))


def test_it_serves_leads_over_the_api_and_from_the_report(
    carded: AuditBuilt, lead_client: Client, annotator_client: Client
) -> None:
    pk = carded.audit.pk
    api = lead_client.get(f"/api/audits/{pk}/model-card/")
    markdown = lead_client.get(f"/api/audits/{pk}/model-card/", {"file_format": "md"})
    unknown = lead_client.get(f"/api/audits/{pk}/model-card/", {"judge": "nobody"})
    denied = annotator_client.get(f"/api/audits/{pk}/model-card/")
    page = lead_client.get(f"/reports/audit/{pk}/model-card.md")
    page_denied = annotator_client.get(f"/reports/audit/{pk}/model-card.json")
    report = lead_client.get(f"/reports/audit/{pk}/")

    assert api.status_code == 200 and api.json()[0]["judge"]["name"] == "planted judge"
    assert markdown["Content-Type"].startswith("text/markdown")
    assert markdown.content.decode().startswith("## LLM judge audit")
    assert unknown.status_code == 400 and "nobody" in unknown.json()["detail"]
    assert denied.status_code == 403 and page_denied.status_code == 403
    assert page.status_code == 200 and page.content == markdown.content
    assert f'href="/reports/audit/{pk}/model-card.md"'.encode() in report.content
