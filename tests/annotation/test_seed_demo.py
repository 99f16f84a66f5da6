"""The README's demo command seeds real data: PandaLM with its votes and both judges, hh-rlhf,
refusal classes for every response, a part-labelled audit with a release gate, and reports."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command

from analysis.models import MetricSnapshot, ReleaseGate
from annotation.models import Audit, Label
from corpus.models import Dataset, HumanVote, Pair
from judges.models import ParseStatus, ResponseClassification, ResponseFeatures, Verdict

pytestmark = pytest.mark.slow


def _counts() -> dict[str, int]:
    return {
        "pairs": Pair.objects.count(),
        "votes": HumanVote.objects.count(),
        "verdicts": Verdict.objects.count(),
        "classes": ResponseClassification.objects.count(),
        "features": ResponseFeatures.objects.count(),
        "labels": Label.objects.count(),
        "gates": ReleaseGate.objects.count(),
        "audits": Audit.objects.count(),
    }


@pytest.mark.django_db(transaction=True)
def test_it_seeds_the_demo_from_the_real_files_and_again_adds_nothing() -> None:
    out = StringIO()
    call_command("seed_demo", "--url", "http://127.0.0.1:8123/", stdout=out)
    text = out.getvalue()

    pandalm = Dataset.objects.get(name="pandalm")
    assert Pair.objects.filter(dataset=pandalm).count() == 999
    assert HumanVote.objects.filter(pair__dataset=pandalm).count() == 2997
    verdicts = Verdict.objects.filter(pair__dataset=pandalm).exclude(judge__name="gemma-3-270m")
    assert verdicts.values("judge").distinct().count() == 2
    assert verdicts.count() == 2 * 999
    # The Gemma judge's two versions on 200 PandaLM pairs, v1 imported first.
    gemma_versions = Verdict.objects.filter(pair__dataset=pandalm, judge__name="gemma-3-270m")
    assert sorted(gemma_versions.values_list("judge__version", flat=True).distinct()) == [1, 2]
    assert verdicts.filter(status_ab=ParseStatus.FAILED).count() == 25  # "garbage" outputs
    hh = Dataset.objects.get(name="hh-rlhf")
    assert Pair.objects.filter(dataset=hh).count() == 2312
    for dataset in (pandalm, hh):
        with_text = dataset.prompts.filter(responses__has_text=True).values("responses").count()
        classified = ResponseClassification.objects.filter(response__prompt__dataset=dataset)
        assert classified.count() > 0.95 * with_text
    assert ResponseClassification.objects.filter(
        response__prompt__dataset=hh, label="ethical_refusal"
    ).exists()
    # The Gemma judge's shipped verdicts on hh-rlhf refusal pairs, every one with an outcome.
    gemma = Verdict.objects.filter(pair__dataset=hh, judge__name="gemma-3-270m")
    assert gemma.count() >= 200 and not gemma.filter(outcome=None).exists()

    audit = Audit.objects.get(name="PandaLM demo audit")
    assert Label.objects.filter(item__audit=audit).count() == 120
    gate = ReleaseGate.objects.get(audit=audit)
    assert gate.judge.name.startswith("gpt-3.5-turbo")
    # both Gemma versions join the audit: its comparison page opens on v1 against v2
    gemma = audit.judges.filter(name="gemma-3-270m")
    assert sorted(gemma.values_list("version", flat=True)) == [1, 2]
    for subject in ({"audit": audit}, {"dataset": pandalm}, {"dataset": hh}):
        snapshot = MetricSnapshot.objects.filter(**subject).latest("created_at")
        assert "refusal" in snapshot.metrics["studies"]
    status = re.search(r"release gate on the demo audit: (PASS|FAIL|INCONCLUSIVE)", text)
    assert status is not None
    drift = re.search(
        r"drift check on the demo audit, gemma-3-270m v2 against gemma-3-270m v1 "
        r"\(flip_rate <= 0.35\): (PASS|FAIL|INCONCLUSIVE)",
        text,
    )
    assert drift is not None
    # The Gemma prompt-change audit: the pairs both versions judged, its gate pinned to v2
    # with a drift rule read against v1.
    check = Audit.objects.get(name="Gemma prompt v2 check")
    assert sorted(check.judges.values_list("version", flat=True)) == [1, 2]
    judged = set(gemma_versions.values_list("pair_id", flat=True))
    items = set(check.items.values_list("pair_id", flat=True))
    assert items <= judged and len(items) >= 190
    assert set(check.items.values_list("inclusion_probability", flat=True)) == {1.0}
    drift_gate = ReleaseGate.objects.get(audit=check)
    assert (drift_gate.judge.name, drift_gate.judge.version) == ("gemma-3-270m", 2)
    assert drift_gate.rules == ["flip_rate <= 0.35"]
    assert re.search(
        r"drift gate on 'Gemma prompt v2 check' \(gemma-3-270m v2 against gemma-3-270m v1; "
        r"flip_rate <= 0.35\): (PASS|FAIL|INCONCLUSIVE)",
        text,
    )
    logins = dict(re.findall(r"^\s+(lead|annotator1|annotator2)\s+password (\S+)$", text, re.M))
    assert set(logins) == {"lead", "annotator1", "annotator2"}
    assert "http://127.0.0.1:8123/" in text

    before = _counts()
    again = StringIO()
    call_command("seed_demo", stdout=again)
    assert _counts() == before
    new_logins = dict(
        re.findall(r"^\s+(lead|annotator1|annotator2)\s+password (\S+)$", again.getvalue(), re.M)
    )
    assert new_logins["lead"] != logins["lead"]
