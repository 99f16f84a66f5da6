"""Finding an audit's judge the way people type it (issue 13 item 5): `manage.py gate --judge`,
the gate-check API and the model card accept the id, the name as pages show it, the bare name
(newest version) and a unique beginning of the name."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from analysis import selectors
from annotation.models import Audit
from tests.factories import DatasetFactory, JudgeFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def audit() -> Audit:
    audit = Audit.objects.create(
        name="a", dataset=DatasetFactory(), target_size=1, overlap_k=1, created_by=UserFactory()
    )
    audit.judges.add(
        JudgeFactory(name="gpt-3.5-turbo · pandalm", version=1),
        JudgeFactory(name="gpt-3.5-turbo · pandalm", version=2, model_id="v2"),
        JudgeFactory(name="pandalm-7b", version=1),
    )
    return audit


def test_each_way_of_naming_finds_the_same_judge_version(audit: Audit) -> None:
    v1, v2, other = sorted(audit.judges.all(), key=lambda j: (j.name, j.version))
    assert str(v2) == "gpt-3.5-turbo · pandalm v2"
    assert selectors.audit_judge_named(audit, "gpt-3.5-turbo · pandalm v1") == v1
    assert selectors.audit_judge_named(audit, str(v1.pk)) == v1
    assert selectors.audit_judge_named(audit, " gpt-3.5-turbo · pandalm ") == v2  # newest
    assert selectors.audit_judge_named(audit, "GPT-3.5") == v2  # a unique beginning
    assert selectors.audit_judge_named(audit, "pandalm-7b v1") == other


def test_an_ambiguous_or_unknown_name_lists_the_judges_as_pages_show_them(audit: Audit) -> None:
    for text in ("gpt-9", ""):  # "" begins every name: two names, so not unique
        with pytest.raises(selectors.JudgeNotOnAudit) as caught:
            selectors.audit_judge_named(audit, text)
        assert str(caught.value) == (
            f"{text!r} is not a judge of audit {audit.pk} (judges: gpt-3.5-turbo · pandalm v1, "
            "gpt-3.5-turbo · pandalm v2, pandalm-7b v1)"
        )


def test_the_gate_command_takes_the_displayed_name(audit: Audit) -> None:
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command(
            "gate", str(audit.pk), "--judge", "gpt-3.5-turbo · pandalm v1",
            "--rule", "lower(cohen_kappa) >= 0.4", "--no-refresh", stdout=out,
        )  # fmt: skip
    v1 = audit.judges.get(version=1, name__startswith="gpt")
    assert exited.value.code == 2  # no labels yet: inconclusive, but the judge was accepted
    assert f"pinned to judge {v1.fingerprint}" in out.getvalue()
    with pytest.raises(CommandError, match=r"--judge 'gpt-9' is not a judge of audit"):
        call_command("gate", str(audit.pk), "--judge", "gpt-9", "--rule", "lower(cohen_kappa) >= 0")
