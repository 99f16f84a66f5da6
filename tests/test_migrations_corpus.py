"""A database made before the corpus app existed upgrades with `migrate` and loses nothing.

The test database is taken back to the migrations of that time (the models lived in
`annotation`, a judge run pointed at an audit), filled through the historical models, then
migrated forward: every table keeps its rows, the rows read back through today's models, a
run over an audit keeps its pairs, and content types keep their ids (so the admin's history
and the permissions follow the models). The same check ran by hand on a copy of the demo
database; see the report of the branch that made the move.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.apps.registry import Apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BEFORE = [
    ("annotation", "0002_initial"),
    ("judges", "0003_classification_run"),
    ("analysis", "0003_release_gate"),
]
OURS = {app for app, _ in BEFORE}
MOVED = ("dataset", "importjob", "prompt", "response", "pair", "humanvote")


def _executor() -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    return executor


@pytest.fixture
def before() -> Iterator[Apps]:
    """The database at the old migrations (corpus unmigrated); migrated to the latest again
    afterwards, whatever the test did, so later tests meet today's schema."""
    executor = _executor()
    executor.migrate([*BEFORE, ("corpus", None)])
    try:
        graph = _executor().loader.graph
        others = [node for node in graph.leaf_nodes() if node[0] not in {*OURS, "corpus"}]
        yield _executor().loader.project_state([*others, *BEFORE], at_end=True).apps
    finally:
        executor = _executor()
        executor.migrate(executor.loader.graph.leaf_nodes())


def _fill(apps: Apps) -> dict[str, Any]:
    """One row or more in every table the move touches, through the historical models."""

    def model(label: str) -> Any:
        return apps.get_model(*label.split("."))

    now = timezone.now()
    lead = model("auth.User").objects.create(username="lead")
    dataset = model("annotation.Dataset").objects.create(name="old", created_by=lead)
    job = model("annotation.ImportJob").objects.create(
        dataset=dataset, format="generic", filename="old.jsonl", status="done", rows_total=2
    )
    pairs = []
    for i in range(3):
        prompt = model("annotation.Prompt").objects.create(
            dataset=dataset, text=f"question {i}", content_hash=f"p{i}"
        )
        a, b = (
            model("annotation.Response").objects.create(
                prompt=prompt, model_name=name, text=f"{name} {i}", content_hash=f"{name}{i}"
            )
            for name in ("x", "y")
        )
        pairs.append(
            model("annotation.Pair").objects.create(
                dataset=dataset,
                source_key=f"k{i}",
                prompt=prompt,
                response_a=a,
                response_b=b,
                content_hash=f"pair{i}",
            )
        )
        model("annotation.HumanVote").objects.create(
            pair=pairs[-1], source="generic", voter_id="v", outcome="A", row_hash=f"h{i}",
            import_job=job,
        )  # fmt: skip
    judge = model("judges.Judge").objects.create(
        name="j", provider="openai_compatible", model_id="m", fingerprint="f" * 64
    )
    model("judges.Verdict").objects.create(judge=judge, pair=pairs[0], outcome="A")
    response = pairs[0].response_a
    model("judges.ResponseClassification").objects.create(
        response=response, classifier="c", label="normal", score=0.9
    )
    model("judges.ResponseFeatures").objects.create(
        response=response, extractor="e", length_chars=3, length_tokens=1
    )
    model("judges.ClassificationRun").objects.create(dataset=dataset, status="done")
    audit = model("annotation.Audit").objects.create(
        name="audit", dataset=dataset, created_by=lead, target_size=2
    )
    audit.judges.add(judge)
    audit.annotators.add(lead)
    items = [
        model("annotation.AuditItem").objects.create(
            audit=audit, pair=pair, stratum="random", inclusion_probability=0.5, position=pos
        )
        for pos, pair in ((0, pairs[2]), (1, pairs[0]))
    ]
    assignment = model("annotation.Assignment").objects.create(
        item=items[0], annotator=lead, a_on_left=True, served_at=now,
        expires_at=now + timedelta(minutes=10), status="submitted",
    )  # fmt: skip
    model("annotation.Label").objects.create(
        item=items[0], assignment=assignment, annotator=lead, outcome="B",
        submission_key=uuid.uuid4(),
    )  # fmt: skip
    model("annotation.Adjudication").objects.create(item=items[1], lead=lead, outcome="A")
    audit_run = model("judges.JudgeRun").objects.create(
        judge=judge, dataset=dataset, audit=audit, status="done", total=2, done=2
    )
    dataset_run = model("judges.JudgeRun").objects.create(judge=judge, dataset=dataset, total=3)
    model("analysis.MetricSnapshot").objects.create(dataset=dataset)
    model("analysis.ReleaseGate").objects.create(
        audit=audit, judge=judge, judge_fingerprint=judge.fingerprint, created_by=lead
    )
    # What a database made by `migrate` holds: content types, their permissions, admin history.
    ContentType = model("contenttypes.ContentType")
    pair_type, _ = ContentType.objects.get_or_create(app_label="annotation", model="pair")
    for name in MOVED:
        ContentType.objects.get_or_create(app_label="annotation", model=name)
    permission, _ = model("auth.Permission").objects.get_or_create(
        content_type=pair_type, codename="view_pair", defaults={"name": "Can view pair"}
    )
    entry = model("admin.LogEntry").objects.create(
        user=lead, content_type=pair_type, object_id=str(pairs[0].pk), object_repr="k0",
        action_flag=2, action_time=now,
    )  # fmt: skip
    return {
        "pairs": [p.pk for p in pairs],
        "audit": audit.pk,
        "audit_run": audit_run.pk,
        "dataset_run": dataset_run.pk,
        "pair_type": pair_type.pk,
        "permission": permission.pk,
        "entry": entry.pk,
    }


def _counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        counts = {}
        for table in tables:
            if table.startswith(("annotation_", "judges_", "analysis_", "auth_", "django_admin")):
                cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
                counts[table] = cursor.fetchone()[0]
    return counts


def test_it_upgrades_a_database_from_before_the_datasets_app_without_losing_a_row(
    before: Apps,
) -> None:
    made = _fill(before)
    counts = _counts()

    executor = _executor()
    executor.migrate(executor.loader.graph.leaf_nodes())

    from django.contrib.admin.models import LogEntry
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    from annotation.models import Audit
    from corpus.models import HumanVote, ImportJob, Pair
    from judges.models import JudgeRun, Verdict

    after = _counts()
    # every table, every row; tables that later migrations add start empty
    assert {table: n for table, n in after.items() if table in counts} == counts
    assert set(counts) <= set(after)
    assert all(n == 0 for table, n in after.items() if table not in counts)
    assert counts["annotation_pair"] == 3 and counts["annotation_humanvote"] == 3
    pairs = Pair.objects.filter(pk__in=made["pairs"]).select_related("prompt", "response_a")
    assert sorted((p.source_key, p.prompt.text, p.response_a.text) for p in pairs) == [
        ("k0", "question 0", "x 0"),
        ("k1", "question 1", "x 1"),
        ("k2", "question 2", "x 2"),
    ]
    assert HumanVote.objects.filter(import_job__in=ImportJob.objects.all()).count() == 3
    assert Verdict.objects.get().pair_id == made["pairs"][0]
    audit = Audit.objects.get(pk=made["audit"])
    assert audit.dataset.name == "old" and audit.items.count() == 2
    audit_run = JudgeRun.objects.get(pk=made["audit_run"])
    assert audit_run.scope == f"audit {audit.pk}"
    assert audit_run.pair_ids == [made["pairs"][2], made["pairs"][0]]  # serving order
    dataset_run = JudgeRun.objects.get(pk=made["dataset_run"])
    assert (dataset_run.scope, dataset_run.pair_ids) == ("", None)
    pair_type = ContentType.objects.get(pk=made["pair_type"])
    assert (pair_type.app_label, pair_type.model) == ("corpus", "pair")
    assert pair_type.model_class() is Pair
    assert not ContentType.objects.filter(app_label="annotation", model__in=MOVED).exists()
    assert Permission.objects.get(pk=made["permission"]).content_type_id == pair_type.pk
    assert LogEntry.objects.get(pk=made["entry"]).get_edited_object() == Pair.objects.get(
        pk=made["pairs"][0]
    )


def test_it_goes_back_to_the_old_migrations_and_keeps_an_audit_run(before: Apps) -> None:
    made = _fill(before)
    counts = _counts()
    executor = _executor()
    executor.migrate(executor.loader.graph.leaf_nodes())

    executor = _executor()
    executor.migrate([*BEFORE, ("corpus", None)])

    assert _counts() == counts
    with connection.cursor() as cursor:
        cursor.execute("SELECT audit_id FROM judges_judgerun WHERE id = %s", [made["audit_run"]])
        assert cursor.fetchone()[0] == made["audit"]
        cursor.execute(
            "SELECT app_label FROM django_content_type WHERE id = %s", [made["pair_type"]]
        )
        assert cursor.fetchone()[0] == "annotation"
