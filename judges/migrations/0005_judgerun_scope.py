"""A judge run is scoped by the pairs it judges instead of by an audit.

`JudgeRun.audit` (a foreign key from judges to annotation, the one place judges knew about
audits) becomes `pair_ids` (the audit's pairs in serving order, as the run judged them) and
`scope` ("audit <id>"). Every run over an audit keeps what it covered; runs over a whole
dataset keep `pair_ids` empty (None). Reversible: going back sets the audit again from the
scope when that audit still exists.
"""

from django.db import migrations, models


def audit_to_scope(apps, schema_editor) -> None:
    JudgeRun = apps.get_model("judges", "JudgeRun")
    AuditItem = apps.get_model("annotation", "AuditItem")
    db = schema_editor.connection.alias
    for run in JudgeRun.objects.using(db).filter(audit__isnull=False).only("pk", "audit_id"):
        items = AuditItem.objects.using(db).filter(audit_id=run.audit_id).order_by("position")
        run.pair_ids = list(items.values_list("pair_id", flat=True))
        run.scope = f"audit {run.audit_id}"
        run.save(update_fields=["pair_ids", "scope"])


def scope_to_audit(apps, schema_editor) -> None:
    JudgeRun = apps.get_model("judges", "JudgeRun")
    Audit = apps.get_model("annotation", "Audit")
    db = schema_editor.connection.alias
    for run in JudgeRun.objects.using(db).filter(scope__startswith="audit "):
        audit_id = run.scope.removeprefix("audit ")
        if audit_id.isdigit() and Audit.objects.using(db).filter(pk=int(audit_id)).exists():
            run.audit_id = int(audit_id)
            run.save(update_fields=["audit"])


class Migration(migrations.Migration):
    dependencies = [
        ("judges", "0004_corpus_app"),
        ("annotation", "0003_corpus_app"),
    ]

    operations = [
        migrations.AddField(
            model_name="judgerun",
            name="pair_ids",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="judgerun",
            name="scope",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.RunPython(audit_to_scope, scope_to_audit),
        migrations.RemoveField(model_name="judgerun", name="audit"),
    ]
