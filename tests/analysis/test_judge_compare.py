"""Two judge versions compared on a dataset and an audit: `manage.py judge_compare`, the page,
the API and drift rules in the release gate (analysis/compare.py, compare_views.py)."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from analysis import compare
from annotation.models import Audit, AuditItem
from corpus.models import Dataset, HumanVote
from judges.models import Judge
from tests.factories import (
    DatasetFactory,
    JudgeFactory,
    PairFactory,
    UserFactory,
    VerdictFactory,
)
from tests.shared_rows import SharedRows

VERDICTS = np.array(["A", "tie", "B"], dtype=object)
CATEGORIES = ("coding", "math", "writing", "chat")


def build_planted() -> dict[str, Any]:
    """160 pairs in four categories, one human vote each; v2 flips 40% of v1's verdicts in
    "coding" and none elsewhere; v1 agrees with the people on about 80% of pairs. With an
    audit of every pair that nobody has labelled. Primary keys: each test reads fresh rows."""
    rng = np.random.default_rng(7)
    dataset = DatasetFactory(name="planted")
    v1 = JudgeFactory(name="judge-x", version=1, model_id="m-1")
    v2 = JudgeFactory(name="judge-x", version=2, model_id="m-2")
    flipped = 0
    pairs = []
    for i in range(160):
        category = CATEGORIES[i % 4]
        # lengths unrelated to the category (and to factory counters shared across tests)
        texts = ["x" * (40 + (i * 37) % 200), "y" * (40 + (i * 53) % 200)]
        pair = PairFactory(
            prompt__dataset=dataset,
            category=category,
            response_a__text=texts[0],
            response_b__text=texts[1],
        )
        pairs.append(pair)
        people = rng.choice(VERDICTS)
        first = people if rng.random() < 0.8 else rng.choice([v for v in VERDICTS if v != people])
        second = first
        if category == "coding" and i // 4 < 16:  # 16 of the 40 coding pairs
            second = rng.choice([v for v in VERDICTS if v != first])
            flipped += 1
        HumanVote.objects.create(
            pair=pair, source="generic", voter_id="p1", outcome=people, row_hash=f"h{i}"
        )
        for judge, verdict in ((v1, first), (v2, second)):
            VerdictFactory(judge=judge, pair=pair, outcome=verdict, both_orders=True)
    audit = Audit.objects.create(
        name="drift", dataset=dataset, target_size=160, overlap_k=1, created_by=UserFactory()
    )
    audit.judges.add(v1, v2)
    AuditItem.objects.bulk_create(
        AuditItem(audit=audit, pair=pair, stratum="random", inclusion_probability=1.0, position=i)
        for i, pair in enumerate(pairs)
    )
    return {
        "dataset": dataset.pk,
        "v1": v1.pk,
        "v2": v2.pk,
        "flipped": flipped,
        "audit": audit.pk,
    }


@pytest.fixture
def _planted_rows(shared_rows: SharedRows, django_db_setup: None) -> dict[str, Any]:
    return shared_rows.get("planted", build_planted)  # once for the tests that read it


@pytest.fixture
def planted(_planted_rows: dict[str, Any], db: None) -> dict[str, Any]:
    return {
        "dataset": Dataset.objects.get(pk=_planted_rows["dataset"]),
        "v1": Judge.objects.get(pk=_planted_rows["v1"]),
        "v2": Judge.objects.get(pk=_planted_rows["v2"]),
        "flipped": _planted_rows["flipped"],
    }


def test_it_reports_the_planted_slice_first_with_the_true_rate_inside(planted: dict) -> None:
    data = compare.judges_compare(
        first=planted["v1"], second=planted["v2"], dataset=planted["dataset"], n_boot=500
    )
    figures = data.figures
    assert data.pairs_compared == 160 and data.pairs_labelled == 160
    assert figures.flip_rate.value == pytest.approx(planted["flipped"] / 160)
    top = figures.slices[0]
    assert (top.slice, top.value, top.shifted) == ("category", "coding", True)
    assert top.flip_rate_ci is not None
    low, high = top.flip_rate_ci
    assert top.flip_rate == pytest.approx(16 / 40)
    assert low <= 0.4 <= high
    assert sum(sum(row) for row in figures.flip_matrix.counts) == 160
    assert np.trace(np.array(figures.flip_matrix.counts)) == 160 - planted["flipped"]
    assert set(data.slice_names) >= {"category", "length_bucket"}


def test_the_command_prints_markdown_and_json(planted: dict) -> None:
    out = io.StringIO()
    call_command(
        "judge_compare", "judge-x v1", "judge-x v2", "--dataset", "planted",
        "--n-boot", "200", stdout=out,
    )  # fmt: skip
    text = out.getvalue()
    assert text.startswith("# judge-x v2 against judge-x v1")
    assert "## Shifted slices (1)" in text
    assert "| Category: coding | 40 | 0.400" in text
    out = io.StringIO()
    call_command(
        "judge_compare", str(planted["v1"].pk), "judge-x", "--dataset", "planted",
        "--format", "json", "--n-boot", "200", stdout=out,
    )  # fmt: skip
    data = json.loads(out.getvalue())
    assert data["second"]["version"] == 2  # the bare name is the newest version
    assert data["figures"]["shifted"] == 1


def test_the_command_names_a_judge_it_does_not_know(planted: dict) -> None:
    with pytest.raises(CommandError, match=r"'judge-q' is not a judge of dataset planted"):
        call_command("judge_compare", "judge-q", "judge-x", "--dataset", "planted")
    with pytest.raises(CommandError, match="no dataset with that name"):
        call_command("judge_compare", "judge-x v1", "judge-x", "--dataset", "nope")


def test_the_api_gives_the_commands_json(planted: dict, lead_client: Client) -> None:
    response = lead_client.get("/api/datasets/planted/compare/?a=judge-x v1&b=judge-x v2")
    assert response.status_code == 200
    body = response.json()
    assert body["first"]["id"] == planted["v1"].pk
    assert body["figures"]["slices"][0]["value"] == "coding"
    bad = lead_client.get("/api/datasets/planted/compare/?a=judge-x v1")
    assert bad.status_code == 400 and "b" in bad.json()


def test_the_page_shows_summary_shifted_slices_and_plot(planted: dict, lead_client: Client) -> None:
    v1, v2 = planted["v1"], planted["v2"]
    response = lead_client.get(f"/reports/dataset/planted/compare/?a={v1.pk}&b={v2.pk}")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.index('id="summary"') < page.index('id="shifted"') < page.index('id="flip-matrix"')
    assert "Category: coding" in page and "<svg" in page
    assert "<script>" not in page and "style=" not in page
    same = lead_client.get(f"/reports/dataset/planted/compare/?a={v1.pk}&b={v1.pk}")
    assert same.status_code == 400 and "Pick two different judges." in same.content.decode()


def test_the_page_is_for_leads_only(planted: dict, annotator_client: Client) -> None:
    assert annotator_client.get("/reports/dataset/planted/compare/").status_code == 403
    assert annotator_client.get("/api/datasets/planted/compare/?a=1&b=2").status_code == 403


@pytest.fixture
def audit(_planted_rows: dict[str, Any], db: None) -> Audit:
    return Audit.objects.get(pk=_planted_rows["audit"])


def test_a_drift_gate_compares_with_the_previous_version(audit: Audit) -> None:
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command(
            "gate", str(audit.pk), "--judge", "judge-x v2",
            "--rule", "flip_rate <= 0.30",
            "--rule", "upper(flip_rate) <= 0.20 on each slice with n >= 30",
            stdout=out,
        )  # fmt: skip
    text = out.getvalue()
    assert "against baseline judge-x v1" in text
    assert "[PASS] upper(flip_rate) <= 0.3" in text
    assert "[FAIL] upper(flip_rate) <= 0.2 on each slice with n >= 30" in text
    assert "category=coding" in text
    assert exited.value.code == 1


def test_a_drift_gate_without_a_baseline_is_inconclusive(audit: Audit) -> None:
    audit.judges.add(JudgeFactory(name="solo", version=1))
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command(
            "gate", str(audit.pk), "--judge", "solo", "--rule", "flip_rate <= 0.05",
            stdout=out,
        )  # fmt: skip
    assert exited.value.code == 2
    assert "no baseline judge" in out.getvalue()


def test_gate_help_lists_the_drift_metrics() -> None:
    from analysis.management.commands.gate import Command

    assert "flip_rate" in Command.help and "delta.cohen_kappa" in Command.help


def test_judges_of_an_unrelated_name_are_not_a_default_baseline(audit: Audit) -> None:
    other = JudgeFactory(name="other", version=3)
    audit.judges.add(other)
    from analysis import gates

    assert gates.drift_baseline(audit, Judge.objects.get(name="judge-x", version=2)).version == 1
    assert gates.drift_baseline(audit, other) is None
    assert Dataset.objects.count() == 1


def test_the_gate_check_api_takes_a_baseline(audit: Audit, lead_client: Client) -> None:
    body = {
        "judge": "judge-x v2",
        "baseline": "judge-x v1",
        "rules": ["lower(delta(percent_agreement)) >= -0.5", "flip_rate <= 0.3"],
    }
    response = lead_client.post(
        f"/api/audits/{audit.pk}/gate/check/", body, content_type="application/json"
    )
    assert response.status_code == 200
    data = response.json()
    assert data["baseline"]["version"] == 1
    # no labels in the audit: no people's verdicts, so the delta is undefined
    assert [r["status"] for r in data["rules"]] == ["INCONCLUSIVE", "PASS"]
    body["baseline"] = "judge-q"
    bad = lead_client.post(
        f"/api/audits/{audit.pk}/gate/check/", body, content_type="application/json"
    )
    assert bad.status_code == 400 and "judge-q" in bad.json()["baseline"][0]


def test_the_audit_page_compares_the_two_newest_versions_at_once(
    audit: Audit, lead_client: Client
) -> None:
    JudgeFactory(name="unrelated", version=1)
    response = lead_client.get(f"/reports/audit/{audit.pk}/compare/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "judge-x v2 against judge-x v1" in page
    assert f"/api/audits/{audit.pk}/compare/?a={audit.judges.get(version=1).pk}" in page
    api = lead_client.get(f"/api/audits/{audit.pk}/compare/?a=judge-x v1&b=judge-x v2")
    assert api.json()["subject"]["kind"] == "audit"
    assert api.json()["pairs_labelled"] == 0  # nobody has labelled the audit yet
    assert "agreement" not in api.json()["figures"]
    assert "No pairs labelled by people" in page


def test_the_page_shows_the_drift_gate_in_force_for_the_candidate(
    audit: Audit, lead: object, lead_client: Client
) -> None:
    """A gate pinned to v2 with drift rules: the comparison page gives its answer, rule by rule,
    read against v1 (the previous version), as `manage.py gate` does."""
    from analysis import gates
    from analysis.services import snapshot_compute

    v2 = audit.judges.get(version=2)
    gates.gate_set(
        audit=audit,
        judge=v2,
        rules=["flip_rate <= 0.30", "upper(flip_rate) <= 0.20 on each slice with n >= 30"],
        created_by=lead,
    )
    snapshot_compute(audit=audit)
    page = lead_client.get(f"/reports/audit/{audit.pk}/compare/").content.decode()
    card = page[page.index('data-testid="gate-in-force"') :]
    card = card[: card.index("</section>")]
    answer = gates.gate_evaluate(audit=audit, refresh=False).result
    assert answer.status == "FAIL"  # the planted coding slice flips 40%
    assert ">FAIL<" in card and "drift rules compare it with judge-x v1" in card
    assert [r.status for r in answer.rules] == ["PASS", "FAIL"]
    assert card.count(">PASS<") == 1 and card.count(">FAIL<") == 2  # the badge and the rule
    assert 'data-testid="gate-check"' not in page  # no "check for v2": the gate is about v2


def test_it_says_what_changed_and_by_how_much_when_only_the_reference_differs(
    planted: dict, lead_client: Client
) -> None:
    """Two versions whose hashed configurations differ only by the reference answer: the
    comparison names the change and gives the flip rate as its effect (issue 12 item 5)."""
    from judges.core.config import JudgeConfig

    base = JudgeConfig(
        provider="openai_compatible",
        model_id="m",
        base_url="http://127.0.0.1:9",
        template_user="{question}\n[A] {answer_a}\n[B] {answer_b}",
    )
    v1, v2 = planted["v1"], planted["v2"]
    v1.config = base.to_dict()
    v2.config = base.replace(reference_field="reference").to_dict()
    Judge.objects.bulk_update([v1, v2], ["config"])
    data = compare.judges_compare(first=v1, second=v2, dataset=planted["dataset"], n_boot=200)
    assert data.changes.as_json() == {
        "fields": ["reference_field"],
        "what": "the reference answer",
        "only": True,
    }
    share = planted["flipped"] / 160  # every pair has both verdicts; a plain recount
    sentence = compare.change_sentence(data)
    claim = f"The reference answer changed {100 * share:.1f}% ["
    assert claim in sentence
    page = lead_client.get(
        f"/reports/dataset/{planted['dataset'].name}/compare/?a={v1.pk}&b={v2.pk}"
    )
    assert claim in page.content.decode()  # the page's own 1,000 resamples: another interval
    out = io.StringIO()
    call_command("judge_compare", str(v1.pk), str(v2.pk), "--dataset", "planted", stdout=out)
    assert claim in out.getvalue()

    # A template and a model change together: named, and the flip rate is not pinned on one.
    v2.config = base.replace(
        template_user="Q: {question}\nA: {answer_a}\nB: {answer_b}", model_id="m2"
    ).to_dict()
    v2.save(update_fields=["config"])
    data = compare.judges_compare(first=v1, second=v2, dataset=planted["dataset"], n_boot=200)
    assert data.changes.what == "the model and the template"
    assert "their effects together" in compare.change_sentence(data)
    # Judges imported with their verdicts record no configuration: nothing is claimed.
    v1.config = {}
    v1.save(update_fields=["config"])
    data = compare.judges_compare(first=v1, second=v2, dataset=planted["dataset"], n_boot=200)
    assert data.changes.fields is None and compare.change_sentence(data) == ""


@pytest.mark.parametrize("subject", ["dataset", "audit"])
def test_the_typed_comparison_gives_back_the_json_it_was_written_as(
    subject: str, audit: Audit, lead_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page, the command and the manifest read the comparison by attribute; the API and
    ``--format json`` answer with its ``as_json()``: the writer's JSON, key for key in its
    order, number for number (1 stays 1, 1.0 stays 1.0), and no key the shape does not name."""
    from analysis import snapshot

    written: list[dict] = []

    def parse(data: dict) -> snapshot.Comparison:
        written.append(data)
        return snapshot.comparison_parse(data)

    monkeypatch.setattr(compare, "comparison_parse", parse)
    kinds = {"dataset": dict(dataset=audit.dataset), "audit": dict(audit=audit)}[subject]
    v1, v2 = audit.judges.order_by("version")
    typed = compare.judges_compare(first=v1, second=v2, n_boot=50, **kinds)
    expected = json.dumps(written[-1])
    assert json.dumps(typed.as_json()) == expected
    assert snapshot.unknown_keys(typed) == []
    assert typed.figures.slices and typed.figures.orders.first is not None
    # the dataset's imported votes give agreement and McNemar; nobody labelled the audit
    assert (typed.figures.agreement is not None) == (subject == "dataset")
    url = (
        f"/api/audits/{audit.pk}/compare/"
        if subject == "audit"
        else "/api/datasets/planted/compare/"
    )
    body = lead_client.get(f"{url}?a={v1.pk}&b={v2.pk}").json()
    assert len(written) == 2 and json.dumps(body) == json.dumps(written[-1])  # 1,000 resamples
