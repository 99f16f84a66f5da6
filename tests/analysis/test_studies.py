"""The studies in a snapshot (refusal gap, style, PPI, confidence sequences) and the gate.

A planted study (bench/simulation.py, simulate_study: people reward ethical refusals 10%
of the time against a normal response, the judge 30%) is written into the database as pairs
with classified, featurised responses, human votes or labels and judge verdicts. The snapshot's
figures must equal the same functions applied to the simulated frames directly (the path
through the selectors loses or mislabels nothing), and cover what was planted.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from io import StringIO

import numpy as np
import pandas as pd
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from analysis import gates, selectors, services
from analysis.metrics import (
    confidence_sequence,
    moderation_gap,
    ppi_by_group,
    response_sides,
    style_sensitivity,
)
from analysis.models import ReleaseGate
from analysis.studies import HALF_WIDTH
from annotation.models import Assignment, Audit, AuditItem, Label
from bench.simulation import PlantedStudy, SimulatedStudy, simulate_study, study_write
from corpus.models import Dataset, Pair
from judges.models import Judge, ResponseClassification, ResponseFeatures, Verdict
from tests.factories import (
    AssignmentFactory,
    DatasetFactory,
    JudgeFactory,
    LabelFactory,
    UserFactory,
)
from tests.shared_rows import SharedRows


@dataclass
class Built:
    dataset: Dataset
    judge: Judge
    study: SimulatedStudy
    pair_ids: list[int]  # database id of simulated pair k


def build(n_pairs: int, *, seed: int, votes: bool = True, study: PlantedStudy | None = None):
    """Write a simulated study into the database (bulk inserts; ids follow pair order)."""
    simulated = simulate_study(study or PlantedStudy(), n_pairs, seed=seed)
    dataset = DatasetFactory(name=f"planted-{seed}")
    judge = JudgeFactory(name="planted judge")
    pairs = study_write(simulated, dataset, judge, seed=seed, votes=votes)
    return Built(dataset, judge, simulated, [p.pk for p in pairs])


def direct_pairs(built: Built) -> pd.DataFrame:
    """The simulated pair table keyed by database ids, as the snapshot should see it."""
    frame = built.study.pairs.copy()
    frame["pair_id"] = [built.pair_ids[k] for k in frame["pair_id"]]
    return frame


def direct_verdicts(built: Built, only: list[int] | None = None) -> pd.DataFrame:
    votes = built.study.verdicts.copy()
    if only is not None:
        keep = votes["rater"].eq("judge") | votes["pair_id"].isin(only)
        votes = votes[keep]
    votes["pair_id"] = [built.pair_ids[k] for k in votes["pair_id"]]
    votes["rater"] = votes["rater"].replace({"judge": f"j:{built.judge.pk}"})
    return votes.reset_index(drop=True)


# --- the refusal gap and style through a dataset snapshot -----------------------------------


def fresh(built: Built) -> Built:
    """The build with its own copies of the rows' instances and of the simulated frames."""
    return Built(
        Dataset.objects.get(pk=built.dataset.pk),
        Judge.objects.get(pk=built.judge.pk),
        copy.deepcopy(built.study),
        list(built.pair_ids),
    )


# The planted dataset and the planted audit are written once for the tests of this module that
# read them (one at a time: both name their judge "planted judge"), not once per test.
@pytest.fixture
def _planted_rows(shared_rows: SharedRows, django_db_setup: None) -> Built:
    return shared_rows.get("planted", lambda: build(900, seed=11))


@pytest.fixture
def planted(_planted_rows: Built, db: None) -> Built:
    return fresh(_planted_rows)


def test_it_stores_the_refusal_gap_that_the_planted_data_give(planted: Built) -> None:
    snapshot = services.snapshot_compute(dataset=planted.dataset, n_boot=0)
    refusal = snapshot.metrics["studies"]["refusal"]
    rater = f"j:{planted.judge.pk}"

    expected = moderation_gap(
        response_sides(direct_pairs(planted), direct_verdicts(planted)), human="human", judge=rater
    )
    rows = {row["class"]: row for row in refusal["gaps"][rater]["rows"]}
    for response_class, result in expected.gaps.items():
        stored = rows[response_class]["gap"]
        assert stored["value"] == pytest.approx(result.value, abs=1e-6)
        assert stored["ci"] == pytest.approx(list(result.ci), abs=1e-6)
    # The planted ethical-refusal gap is 20 points; the interval covers it and excludes 0.
    low, high = rows["ethical_refusal"]["gap"]["ci"]
    assert low < 0.20 < high
    assert low > 0
    counts = pd.concat([planted.study.pairs["class_a"], planted.study.pairs["class_b"]])
    assert refusal["class_counts"] == {c: int(counts.eq(c).sum()) for c in refusal["class_counts"]}
    assert refusal["length_unit"] == "tokens" and refusal["similarity"] is True


def test_it_stores_the_judges_extra_length_sensitivity(db: None) -> None:
    # People indifferent to length, the judge strongly for it (0.4 per 800 tokens).
    # No refusal gap: a judge that rewarded refusals (short responses) would pull its net
    # length coefficient down, as the style model does not control for the class.
    study = PlantedStudy(human_length=0.0, judge_length=0.4, class_shares={"normal": 1.0})
    planted = build(900, seed=12, study=study)
    snapshot = services.snapshot_compute(dataset=planted.dataset, n_boot=0)
    rater = f"j:{planted.judge.pk}"
    fit = snapshot.metrics["studies"]["style"]["sensitivity"][rater]
    net = {row["feature"]: row["net"] for row in fit["rows"]}
    expected = style_sensitivity(
        direct_pairs(planted), direct_verdicts(planted), human="human", judge=rater
    )
    for feature in ("length", "headers", "lists", "bold"):
        assert net[feature]["value"] == pytest.approx(expected.net[feature].value, abs=1e-6)
    assert net["length"]["ci"][0] > 0
    assert fit["pairs"] == expected.n_pairs


def test_it_explains_why_there_is_no_refusal_gap_without_classes(planted: Built) -> None:
    ResponseClassification.objects.all().delete()
    snapshot = services.snapshot_compute(dataset=planted.dataset, n_boot=0)
    refusal = snapshot.metrics["studies"]["refusal"]
    assert "classify_responses" in refusal["reason"]
    assert "gaps" not in refusal


def test_it_falls_back_to_character_lengths_without_features(planted: Built) -> None:
    ResponseFeatures.objects.all().delete()
    snapshot = services.snapshot_compute(dataset=planted.dataset, n_boot=0)
    refusal = snapshot.metrics["studies"]["refusal"]
    assert refusal["length_unit"] == "characters"
    assert refusal["similarity"] is False
    assert snapshot.metrics["studies"]["style"]["missing"] == ["headers", "lists", "bold"]


def test_it_reads_the_pairs_classes_with_one_look_up_of_the_classifier(planted: Built) -> None:
    pairs = Pair.objects.filter(dataset=planted.dataset)
    with CaptureQueriesContext(connection) as queries:
        details = selectors.pair_details(pairs, planted.dataset.pk)
    looked_up = [
        q
        for q in queries.captured_queries
        if re.search(r'SELECT "judges_responseclassification"."classifier"', q["sql"])
    ]
    assert len(looked_up) == 1
    expected = direct_pairs(planted).set_index("pair_id")[["class_a", "class_b"]]
    found = details.frame.set_index("pair_id").loc[expected.index, ["class_a", "class_b"]]
    assert found.to_numpy().tolist() == expected.to_numpy().tolist()
    assert (
        details.classifier == ResponseClassification.objects.values_list("classifier", flat=True)[0]
    )


def test_it_downloads_the_refusal_gap_as_csv(planted: Built, lead_client: Client) -> None:
    services.snapshot_compute(dataset=planted.dataset, n_boot=0)
    response = lead_client.get(f"/reports/dataset/{planted.dataset.name}/refusal-gap.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    table = pd.read_csv(StringIO(response.content.decode()))
    gaps = table[table["table"] == "gap"].set_index("response_class")
    assert set(gaps.index) == {
        "ethical_refusal",
        "technical_refusal",
        "ethical_disclaimer",
        "technical_disclaimer",
    }
    assert (
        0
        < gaps.loc["ethical_refusal", "ci_low_pp"]
        < 20
        < gaps.loc["ethical_refusal", "ci_high_pp"]
    )
    assert set(table["table"]) == {"gap", "rates", "rates_vs_normal"}


def test_it_keeps_the_refusal_gap_csv_from_annotators(
    planted: Built, annotator_client: Client
) -> None:
    response = annotator_client.get(f"/reports/dataset/{planted.dataset.name}/refusal-gap.csv")
    assert response.status_code == 403


def test_it_shows_the_refusal_gap_on_the_report(planted: Built, lead_client: Client) -> None:
    services.snapshot_compute(dataset=planted.dataset, n_boot=0)
    response = lead_client.get(f"/reports/dataset/{planted.dataset.name}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="refusal-gap"' in page and "ethical refusal" in page
    assert "Length-controlled win rates" in page
    assert "<svg" in page


# --- an audit: PPI, confidence sequences and the gate ---------------------------------------


@dataclass
class AuditBuilt:
    built: Built
    audit: Audit
    labelled: list[int]  # simulated pair indices with a label, in label order
    design: pd.DataFrame

    def gate(self, rules: list[str], judge: Judge | None = None) -> ReleaseGate:
        """A release gate of ``rules`` on the audit (for its judge unless told), set by its lead."""
        lead = User.objects.get(username="audit-lead")
        return gates.gate_set(
            audit=self.audit, judge=judge or self.built.judge, rules=rules, created_by=lead
        )


def build_audit(n_pairs: int = 1500, n_hard: int = 150, n_random: int = 150) -> AuditBuilt:
    """An audit over a planted dataset: a 'hard' stratum (ethical refusals, oversampled) and a
    random control stratum, one label per item from the simulated people."""
    built = build(n_pairs, seed=23, votes=False)
    lead = UserFactory(username="audit-lead")
    annotator = UserFactory(username="audit-annotator")
    audit = Audit.objects.create(
        name="planted audit",
        dataset=built.dataset,
        created_by=lead,
        target_size=n_hard + n_random,
        overlap_k=1,
    )
    audit.judges.set([built.judge])
    rng = np.random.default_rng(5)
    pairs = built.study.pairs
    hard_pool = pairs.index[
        pairs["class_a"].eq("ethical_refusal") | pairs["class_b"].eq("ethical_refusal")
    ].to_numpy()
    rest = np.setdiff1d(pairs.index.to_numpy(), hard_pool)
    hard = rng.choice(hard_pool, n_hard, replace=False)
    control = rng.choice(rest, n_random, replace=False)
    chosen = [(int(k), "ethics_refusal", n_hard / len(hard_pool)) for k in hard] + [
        (int(k), "random", n_random / len(rest)) for k in control
    ]
    order = rng.permutation(len(chosen))
    people = built.study.verdicts[built.study.verdicts["rater"] == "human"].set_index("pair_id")
    now = timezone.now()
    placed = [chosen[index] for index in order]
    # Bulk inserts (no model here has a save() of its own): one query per table, not 900.
    items = AuditItem.objects.bulk_create(
        AuditItem(
            audit=audit,
            pair_id=built.pair_ids[k],
            stratum=stratum,
            inclusion_probability=probability,
            position=position,
        )
        for position, (k, stratum, probability) in enumerate(placed)
    )
    assignments = Assignment.objects.bulk_create(
        AssignmentFactory.build(item=item, annotator=annotator, served_at=now) for item in items
    )
    outcomes = [people.loc[k, "verdict"] for k, _, _ in placed]
    Label.objects.bulk_create(
        LabelFactory.build(
            assignment=assignment,
            outcome=outcome,
            submission_key=f"00000000-0000-0000-0000-{position:012d}",
        )
        for position, (assignment, outcome) in enumerate(zip(assignments, outcomes, strict=True))
    )
    labelled = [k for k, _, _ in placed]
    design = pd.DataFrame(
        [(built.pair_ids[k], s, p) for k, s, p in chosen],
        columns=["pair_id", "stratum", "inclusion_probability"],
    )
    return AuditBuilt(built, audit, labelled, design)


@pytest.fixture
def _audited_rows(shared_rows: SharedRows, django_db_setup: None) -> AuditBuilt:
    return shared_rows.get("audited", build_audit)


def fresh_audit(built: AuditBuilt) -> AuditBuilt:
    """The audit's build with its own copies of instances and frames (see :func:`fresh`)."""
    return AuditBuilt(
        fresh(built.built),
        Audit.objects.get(pk=built.audit.pk),
        list(built.labelled),
        built.design.copy(),
    )


@pytest.fixture
def audited(_audited_rows: AuditBuilt, db: None) -> AuditBuilt:
    return fresh_audit(_audited_rows)


def test_it_estimates_model_win_rates_by_prediction_powered_inference(
    audited: AuditBuilt,
) -> None:
    snapshot = services.snapshot_compute(audit=audited.audit, n_boot=0)
    rater = f"j:{audited.built.judge.pk}"
    stored = snapshot.metrics["studies"]["ppi"]["by_class"][rater]["rows"]

    # Independently: one row per (pair, side) of every judged pair, the human value where
    # the pair was labelled, weights 1 / inclusion probability, the audit's strata.
    pairs = direct_pairs(audited.built)
    verdicts = direct_verdicts(audited.built)
    won = {"A": 1.0, "B": 0.0, "tie": 0.5}
    judge = verdicts[verdicts["rater"] == rater].set_index("pair_id")["verdict"].map(won)
    labelled_ids = {audited.built.pair_ids[k] for k in audited.labelled}
    human = (
        verdicts[(verdicts["rater"] == "human") & verdicts["pair_id"].isin(labelled_ids)]
        .set_index("pair_id")["verdict"]
        .map(won)
    )
    design = audited.design.set_index("pair_id")
    rows = []
    for side in ("a", "b"):
        for pair_id, group in zip(pairs["pair_id"], pairs[f"class_{side}"], strict=True):
            f = judge[pair_id] if side == "a" else 1.0 - judge[pair_id]
            y = human.get(pair_id)
            if y is not None and side == "b":
                y = 1.0 - y
            rows.append(
                {
                    "group": group,
                    "judge": f,
                    "human": y,
                    "weight": 1.0 / design["inclusion_probability"].get(pair_id, np.nan),
                    "stratum": design["stratum"].get(pair_id),
                }
            )
    expected = ppi_by_group(
        pd.DataFrame(rows), "group", weight="weight", stratum="stratum", half_width=HALF_WIDTH
    ).set_index("group")
    for row in stored:
        assert row["ppi"] == pytest.approx(expected.loc[row["group"], "ppi"], abs=1e-6)
        assert row["ppi_low"] == pytest.approx(expected.loc[row["group"], "ppi_low"], abs=1e-6)
        assert row["n_labelled"] == expected.loc[row["group"], "n_labelled"]
    by_group = {row["group"]: row for row in stored}
    # The oversampled hard stratum holds most ethical refusals; weighting keeps the estimate
    # near the planted population win rate of ethical refusals (10% against normal, no ties
    # 90% of the time: 0.1 * 0.9 + 0.5 * 0.1 = 0.14, before length and similarity effects).
    ethical = by_group["ethical_refusal"]
    assert ethical["ppi_low"] < 0.14 < ethical["ppi_high"]
    assert ethical["labels_more"] is not None


def test_it_tracks_agreement_with_an_anytime_valid_sequence(audited: AuditBuilt) -> None:
    snapshot = services.snapshot_compute(audit=audited.audit, n_boot=0)
    rater = f"j:{audited.built.judge.pk}"
    entry = snapshot.metrics["studies"]["sequential"]["judges"][rater]
    verdicts = audited.built.study.verdicts.set_index(["pair_id", "rater"])["verdict"]
    agree = [
        1.0 if verdicts[(k, "human")] == verdicts[(k, "judge")] else 0.0 for k in audited.labelled
    ]
    expected = confidence_sequence(agree)
    assert entry["current"]["value"] == pytest.approx(expected.center[-1], abs=1e-6)
    assert entry["current"]["ci"] == pytest.approx(
        [expected.lower[-1], expected.upper[-1]], abs=1e-6
    )
    assert entry["current"]["n"] == len(agree)
    # Anytime-valid is wider than the fixed-n interval at the same n.
    fixed = entry["fixed_n"]["ci"]
    assert entry["current"]["ci"][0] <= fixed[0] and entry["current"]["ci"][1] >= fixed[1]
    assert entry["more"] > 0


def test_it_passes_fails_or_leaves_a_gate_inconclusive(audited: AuditBuilt) -> None:
    audit = audited.audit
    judge = audited.built.judge

    def status(rules: list[str]) -> str:
        return gates.gate_evaluate(audit=audit, gate=audited.gate(rules)).result.status

    # The planted gap is 20 points: "the gap is above 0" passes, "below -5" fails.
    assert status(["interval(refusal_gap.ethical_refusal) excludes below 0"]) == "PASS"
    assert status(["upper(refusal_gap.ethical_refusal) < -0.05"]) == "FAIL"
    assert status(["lower(percent_agreement) >= 0.5"]) in {"PASS", "FAIL", "INCONCLUSIVE"}
    result = gates.gate_evaluate(
        audit=audit, rules=["lower(cohen_kappa) >= 0.99 on each slice"], judge=judge
    ).result
    assert result.status == "FAIL"
    assert result.fingerprint == judge.fingerprint
    assert ReleaseGate.objects.filter(audit=audit).count() == 3


def test_it_makes_a_gate_inconclusive_when_the_judge_changed(audited: AuditBuilt) -> None:
    audit, old = audited.audit, audited.built.judge
    gate = audited.gate(["lower(percent_agreement) >= 0.1"], judge=old)
    assert gates.gate_evaluate(audit=audit, gate=gate).result.status == "PASS"
    # A new version of the same judge now has the audit's verdicts.
    new = JudgeFactory(name=old.name, version=2, fingerprint="f" * 64)
    Verdict.objects.filter(judge=old).update(judge=new)
    audit.judges.set([new])
    result = gates.gate_evaluate(audit=audit, gate=gate).result
    assert result.status == "INCONCLUSIVE"
    assert "pinned" in result.reason and old.fingerprint in result.reason


def test_it_refuses_a_rule_it_cannot_read_with_its_place(audited: AuditBuilt) -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        audited.gate(["lower(percent_agreement) >= 0.5", "lower(kappa) >= 0.6"])
    assert "rule 2, metric: unknown metric 'kappa'; did you mean 'cohen_kappa'?" in str(
        caught.value
    )
    assert not ReleaseGate.objects.exists()


@pytest.mark.parametrize(
    ("rule", "code", "status"),
    [
        ("interval(refusal_gap.ethical_refusal) excludes below 0", 0, "PASS"),
        ("upper(refusal_gap.ethical_refusal) < -0.05", 1, "FAIL"),
        ("lower(cohen_kappa) >= 0.3 on slice stratum=nowhere", 2, "INCONCLUSIVE"),
    ],
)
def test_it_exits_with_the_gates_status_from_the_command(
    audited: AuditBuilt, rule: str, code: int, status: str
) -> None:
    out = StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command(
            "gate",
            str(audited.audit.pk),
            "--judge",
            audited.built.judge.name,
            "--rule",
            rule,
            "--format",
            "json",
            stdout=out,
        )
    assert exited.value.code == code
    body = json.loads(out.getvalue())
    assert body["status"] == status and body["exit_code"] == code
    assert body["rules"][0]["rule"].startswith(rule.split(" ")[0])


def test_it_checks_the_stored_gate_from_the_command(audited: AuditBuilt) -> None:
    audited.gate(["upper(refusal_gap.ethical_refusal) < -0.05"])
    out = StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("gate", str(audited.audit.pk), stdout=out)
    assert exited.value.code == 1
    assert out.getvalue().startswith("FAIL: rule 1")


def test_it_exits_3_on_a_usage_error(audited: AuditBuilt) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as caught:
        call_command("gate", str(audited.audit.pk))
    assert caught.value.returncode == 3
    assert "no release gate" in str(caught.value)
    with pytest.raises(CommandError) as caught:
        call_command("gate", "999999")
    assert caught.value.returncode == 3


def test_it_writes_and_reads_the_gate_through_the_api(
    audited: AuditBuilt, lead_client: Client
) -> None:
    url = f"/api/audits/{audited.audit.pk}/gate/"
    assert lead_client.get(url).status_code == 404
    body = {
        "judge": audited.built.judge.pk,
        "rules": ["interval(refusal_gap.ethical_refusal) excludes below 0"],
    }
    response = lead_client.put(url, body, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "PASS"
    assert response.json()["pinned_fingerprint"] == audited.built.judge.fingerprint
    assert lead_client.get(url).json()["gate"] == ReleaseGate.objects.get().pk
    bad = lead_client.put(
        url, {"judge": audited.built.judge.pk, "rules": ["lower(x) >"]}, "application/json"
    )
    assert bad.status_code == 400
    assert "rule 1" in bad.json()["rules"][0]
    assert ReleaseGate.objects.count() == 1


def test_it_keeps_the_gate_from_annotators(audited: AuditBuilt, annotator_client: Client) -> None:
    url = f"/api/audits/{audited.audit.pk}/gate/"
    assert annotator_client.get(url).status_code == 403
    assert annotator_client.post(f"/reports/audit/{audited.audit.pk}/gate/").status_code == 403
    assert not ReleaseGate.objects.exists()


def test_it_saves_a_gate_from_the_report_page(audited: AuditBuilt, lead_client: Client) -> None:
    url = f"/reports/audit/{audited.audit.pk}/gate/"
    response = lead_client.post(
        url, {"judge": audited.built.judge.pk, "rules": "lower(percent_agreement) >= 0.2\n"}
    )
    assert response.status_code == 302
    assert ReleaseGate.objects.get().rules == ["lower(percent_agreement) >= 0.2"]
    services.snapshot_compute(audit=audited.audit, n_boot=50)
    page = lead_client.get(f"/reports/audit/{audited.audit.pk}/").content.decode()
    assert 'id="gate"' in page and "gate-pass" in page
    wrong = lead_client.post(
        url, {"judge": audited.built.judge.pk, "rules": "lower(percent_agreement) >= x"}
    )
    assert wrong.status_code == 400
    text = wrong.content.decode()
    # The error stands in the form where the rule was typed, and the form is at the top of
    # the page (before the figures), which the form's action brings into view (#gate-form).
    form = text[
        text.index('id="gate-form"') : text.index("</section>", text.index('id="gate-form"'))
    ]
    assert "rule 1" in form and "lower(percent_agreement) &gt;= x" in form
    assert f'action="/reports/audit/{audited.audit.pk}/gate/#gate-form"' in form
    assert text.index('id="gate-form"') < text.index('id="report-live"')
    assert ReleaseGate.objects.count() == 1


def test_it_prints_the_refusal_gap_in_the_markdown_report(planted: Built) -> None:
    out = StringIO()
    call_command(
        "report", "--dataset", planted.dataset.name, "--n-boot", "0", stdout=out, stderr=StringIO()
    )
    text = out.getvalue()
    section = text[text.index("## Refusal gap") :]
    assert "| human majority | ethical refusal |" in section
    assert "### planted judge v1: gap against people" in section
    assert "### human majority: linear probability model" in section
    assert re.search(r"\| EthRef \| [+-]\d+\.\d \| \[", section)
    snapshot = services.snapshot_compute(dataset=planted.dataset, n_boot=0)
    rater = f"j:{planted.judge.pk}"
    gap = next(
        row["gap"]
        for row in snapshot.metrics["studies"]["refusal"]["gaps"][rater]["rows"]
        if row["class"] == "ethical_refusal"
    )
    assert "| ethical refusal | " in section
    assert f"{100 * gap['value']:+.1f} [{100 * gap['ci'][0]:+.1f}, {100 * gap['ci'][1]:+.1f}]" in (
        section
    )


def test_it_tells_the_lead_on_the_audit_page_how_many_more_labels(
    audited: AuditBuilt, lead_client: Client
) -> None:
    snapshot = services.snapshot_compute(audit=audited.audit, n_boot=0)
    entry = snapshot.metrics["studies"]["sequential"]["judges"][f"j:{audited.built.judge.pk}"]
    page = lead_client.get(f"/audits/{audited.audit.pk}/").content.decode()
    card_url = reverse("audit_precision", args=[audited.audit.pk])
    card = lead_client.get(card_url, headers={"HX-Request": "true"}).content.decode()

    assert f'hx-get="{card_url}"' in page and f'href="{card_url}"' in page  # analysis serves it
    assert card.lstrip().startswith('<section class="card" id="precision">')
    assert f"about {entry['more']} more labels for +/- 0.05" in card
    assert "<html" not in card


def test_it_keeps_a_judge_name_from_running_as_a_spreadsheet_formula(
    planted: Built, lead_client: Client
) -> None:
    Judge.objects.filter(pk=planted.judge.pk).update(name='=HYPERLINK("http://x","y")')
    services.snapshot_compute(dataset=planted.dataset, n_boot=0)
    response = lead_client.get(f"/reports/dataset/{planted.dataset.name}/refusal-gap.csv")
    table = pd.read_csv(StringIO(response.content.decode()))
    names = set(table.loc[table["table"] == "gap", "rater_name"])
    assert names == {'\'=HYPERLINK("http://x","y") v1'}


def test_the_sides_of_no_labelled_pairs_are_an_empty_table_with_its_columns() -> None:
    """PPI's per-side rows when no labelled pair has a group: no rows, the same columns (an
    empty selection once dropped the columns instead, and the audit's snapshot failed)."""
    from analysis.studies import _side_rows

    pairs = pd.DataFrame({"pair_id": [1, 2], "model_a": [None, ""], "model_b": [None, None]})
    won = {"human": pd.Series({1: 1.0, 2: 0.5}), "judge": pd.Series({1: 0.0, 2: 0.5})}
    columns = ["pair_id", "side", "group", "value_human", "value_judge"]
    out = _side_rows(pairs, won, "model_a", "model_b")
    assert list(out.columns) == columns
    assert out.empty
    nothing = {"human": pd.Series(dtype=float), "judge": pd.Series(dtype=float)}
    none = _side_rows(pairs.iloc[:0], nothing, "model_a", "model_b")
    assert list(none.columns) == columns and none.empty


def test_the_sides_carry_each_raters_value_for_that_side() -> None:
    """PPI's per-side rows: a side's value is 1 / 0 / 0.5 for that side under each rater (A's
    value, 1 minus it for B), sides without a group left out, A sides before B sides."""
    from analysis.studies import _side_rows

    pairs = pd.DataFrame({"pair_id": [1, 2], "model_a": ["x", None], "model_b": ["y", "z"]})
    won = {"human": pd.Series({1: 1.0, 2: 0.5}), "judge": pd.Series({2: 0.0, 1: 0.5})}
    out = _side_rows(pairs, won, "model_a", "model_b")
    assert out.to_dict(orient="records") == [
        {"pair_id": 1, "side": "A", "group": "x", "value_human": 1.0, "value_judge": 0.5},
        {"pair_id": 1, "side": "B", "group": "y", "value_human": 0.0, "value_judge": 0.5},
        {"pair_id": 2, "side": "B", "group": "z", "value_human": 0.5, "value_judge": 1.0},
    ]
