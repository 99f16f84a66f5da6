"""Point MetricSnapshot.dataset at the model's new home, `corpus` (state only: the table
and column are the same; see corpus/0001_initial)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("analysis", "0003_release_gate"),
        ("corpus", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="metricsnapshot",
                    name="dataset",
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="snapshots", to="corpus.dataset"),
                ),
            ],
            database_operations=[],
        ),
    ]
