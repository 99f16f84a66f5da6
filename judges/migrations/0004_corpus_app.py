"""Point the judges' foreign keys at the models' new home, `corpus` (state only: the
tables and columns are the same; see corpus/0001_initial)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus", "0001_initial"),
        ("judges", "0003_classification_run"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="classificationrun",
                    name="dataset",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="classification_runs", to="corpus.dataset"),
                ),
                migrations.AlterField(
                    model_name="judgerun",
                    name="dataset",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="judge_runs", to="corpus.dataset"),
                ),
                migrations.AlterField(
                    model_name="responseclassification",
                    name="response",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="classes", to="corpus.response"),
                ),
                migrations.AlterField(
                    model_name="responsefeatures",
                    name="response",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="features", to="corpus.response"),
                ),
                migrations.AlterField(
                    model_name="verdict",
                    name="pair",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="verdicts", to="corpus.pair"),
                ),
            ],
            database_operations=[],
        ),
    ]
