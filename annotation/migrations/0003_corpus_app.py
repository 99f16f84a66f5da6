"""Hand Dataset, ImportJob, Prompt, Response, Pair and HumanVote over to the corpus app
(state only: every table stays as it is; see corpus/0001_initial).

Runs after the other apps have repointed their foreign keys (judges/0004, analysis/0004), so
no state ever refers to a model that is gone.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0002_initial"),
        ("corpus", "0001_initial"),
        ("judges", "0004_corpus_app"),
        ("analysis", "0004_corpus_app"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="audit",
                    name="dataset",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="audits", to="corpus.dataset"),
                ),
                migrations.AlterField(
                    model_name="audititem",
                    name="pair",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="audit_items", to="corpus.pair"),
                ),
                migrations.DeleteModel(name="HumanVote"),
                migrations.DeleteModel(name="Pair"),
                migrations.DeleteModel(name="Response"),
                migrations.DeleteModel(name="Prompt"),
                migrations.DeleteModel(name="ImportJob"),
                migrations.DeleteModel(name="Dataset"),
            ],
            database_operations=[],
        ),
    ]
