"""Move the six models' content types from `annotation` to `corpus`.

The content type rows keep their ids, so the admin's log entries and the permissions
(`corpus.add_pair`, ...; same codenames) that point at them follow the models. On a fresh
database there is nothing to move: content types are created after the migrations run.
"""

from django.db import migrations

MODELS = ("dataset", "importjob", "prompt", "response", "pair", "humanvote")


def _move(apps, schema_editor, source: str, target: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model in MODELS:
        old = ContentType.objects.using(db).filter(app_label=source, model=model).first()
        if old is None:
            continue
        # A row for the target may exist if content types were created in between (a
        # `migrate` stopped halfway and resumed): it is the newer one and nothing of value
        # points at it yet, so the old row, which the history points at, wins.
        ContentType.objects.using(db).filter(app_label=target, model=model).delete()
        old.app_label = target
        old.save(update_fields=["app_label"])


def forwards(apps, schema_editor) -> None:
    _move(apps, schema_editor, "annotation", "corpus")


def backwards(apps, schema_editor) -> None:
    _move(apps, schema_editor, "corpus", "annotation")


class Migration(migrations.Migration):
    dependencies = [
        ("corpus", "0001_initial"),
        ("annotation", "0003_corpus_app"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
