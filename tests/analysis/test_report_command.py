"""`manage.py report`: JSON and Markdown for an audit or a dataset."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command

from analysis import plots
from analysis.models import MetricSnapshot
from tests.analysis.test_snapshot import build_audit


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    cache.clear()


def report(*args: str) -> str:
    out = StringIO()
    call_command("report", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_it_prints_the_snapshot_as_json(db: None) -> None:
    data = build_audit()

    body = json.loads(report("--audit", str(data.audit.pk), "--format", "json", "--n-boot", "50"))

    snapshot = MetricSnapshot.objects.get()
    assert body["id"] == snapshot.pk
    assert body["metrics"] == json.loads(json.dumps(snapshot.metrics))
    assert body["metrics"]["settings"]["n_boot"] == 50
    assert body["counts"]["watermark"]["labels"] == snapshot.label_count


def test_it_reuses_a_current_snapshot_and_recomputes_a_stale_one(db: None) -> None:
    data = build_audit()
    report("--audit", str(data.audit.pk), "--format", "json", "--n-boot", "0")
    report("--audit", str(data.audit.pk), "--format", "json", "--n-boot", "0")
    assert MetricSnapshot.objects.count() == 1

    report("--audit", str(data.audit.pk), "--format", "json", "--n-boot", "0", "--recompute")
    assert MetricSnapshot.objects.count() == 2
    report("--audit", str(data.audit.pk), "--format", "json", "--n-boot", "20")  # other settings
    assert MetricSnapshot.objects.count() == 3


def test_it_prints_a_readable_markdown_report(db: None) -> None:
    data = build_audit(judge_names=("gpt|4o", "llama judge"))

    text = report("--audit", str(data.audit.pk), "--format", "md", "--n-boot", "50")

    snapshot = MetricSnapshot.objects.get()
    judge = f"j:{data.judges[1].pk}"
    s1 = snapshot.metrics["figures"]["S1"]["judges"][judge]["vs_humans"]["percent_agreement"]
    assert text.startswith("# Agreement report: audit `Refusal audit`")
    assert "## Each judge against the people" in text
    assert f"| llama judge v1 | {plots.result_text(s1)} |" in text
    assert "| human-human (ceiling) |" in text
    assert "## By stratum" in text and "## Position bias" in text
    assert "gpt\\|4o v1" in text  # a pipe in a name does not break the table
    assert "nan" not in text.lower().replace("nano", "")


def test_it_writes_undefined_with_its_reason(db: None) -> None:
    data = build_audit(rows=[("random", "math", ("B", "B", "B"), ("B", "B"), "B")] * 3)

    text = report("--audit", str(data.audit.pk), "--n-boot", "20")

    assert "undefined: only one category observed" in text


def test_it_reports_a_dataset_by_name(db: None) -> None:
    data = build_audit()

    text = report("--dataset", data.audit.dataset.name, "--n-boot", "20")

    assert text.startswith("# Agreement report: dataset `refusals`")
    assert MetricSnapshot.objects.get().dataset == data.audit.dataset


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--dataset", "missing"), "--dataset 'missing': no such dataset"),
        (("--audit", "999999"), "--audit 999999: no audit with that id"),
        (("--audit", "1", "--n-boot", "-1"), "--n-boot must be 0 or more, got -1"),
    ],
)
def test_it_explains_a_bad_subject(db: None, args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        report(*args)


def test_it_needs_exactly_one_subject(db: None, capsys: Any) -> None:
    with pytest.raises((CommandError, SystemExit)):
        call_command("report", "--format", "md")
