"""The corpus app takes over six models from the annotation app, without touching a table.

Dataset, ImportJob, Prompt, Response, Pair and HumanVote were created by
annotation/0001_initial and annotation/0002_initial; their tables keep those names
(`db_table`). This migration only records the models under `corpus` in Django's state; the
other apps' migrations that follow (judges/0004, analysis/0004, annotation/0003) repoint their
foreign keys in the state, and annotation/0003 forgets the old models. A fresh database gets
the tables from the annotation migrations, as an existing one already has them.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

OUTCOMES = [("A", "A is better"), ("B", "B is better"), ("tie", "Tie"), ("both_bad", "Both bad")]


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("annotation", "0002_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    state_operations = [
        migrations.CreateModel(
            name="Dataset",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.SlugField(max_length=100, unique=True)),
                ("description", models.TextField(blank=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("created_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
            ],
            options={"db_table": "annotation_dataset", "ordering": ["name"]},
        ),
        migrations.CreateModel(
            name="ImportJob",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("format", models.CharField(max_length=32)),
                ("filename", models.CharField(max_length=500)),
                ("file_sha256", models.CharField(blank=True, max_length=64)),
                ("upload", models.FileField(blank=True, upload_to="imports/")),
                ("status", models.CharField(choices=[("pending", "Pending"), ("running", "Running"), ("done", "Done"), ("failed", "Failed")], default="pending", max_length=16)),
                ("rows_total", models.PositiveIntegerField(default=0)),
                ("rows_done", models.PositiveIntegerField(default=0)),
                ("counts", models.JSONField(blank=True, default=dict)),
                ("errors", models.JSONField(blank=True, default=list)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("created_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
                ("dataset", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="imports", to="corpus.dataset")),
            ],
            options={
                "db_table": "annotation_importjob",
                "ordering": ["-created_at"],
                "constraints": [models.CheckConstraint(condition=models.Q(("rows_done__lte", models.F("rows_total")), ("rows_total", 0), _connector="OR"), name="importjob_done_le_total")],
            },
        ),
        migrations.CreateModel(
            name="Prompt",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("text", models.TextField(blank=True)),
                ("content_hash", models.CharField(max_length=64)),
                ("source_key", models.CharField(blank=True, max_length=255)),
                ("category", models.CharField(blank=True, max_length=100)),
                ("meta", models.JSONField(blank=True, default=dict)),
                ("dataset", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="prompts", to="corpus.dataset")),
            ],
            options={
                "db_table": "annotation_prompt",
                "constraints": [models.UniqueConstraint(fields=("dataset", "content_hash"), name="prompt_unique_per_dataset")],
            },
        ),
        migrations.CreateModel(
            name="Response",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("model_name", models.CharField(blank=True, max_length=200)),
                ("text", models.TextField(blank=True)),
                ("has_text", models.BooleanField(default=True)),
                ("content_hash", models.CharField(max_length=64)),
                ("prompt", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="responses", to="corpus.prompt")),
            ],
            options={
                "db_table": "annotation_response",
                "constraints": [models.UniqueConstraint(fields=("prompt", "model_name", "content_hash"), name="response_unique")],
            },
        ),
        migrations.CreateModel(
            name="Pair",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("source_key", models.CharField(max_length=255)),
                ("turn", models.PositiveSmallIntegerField(default=1)),
                ("category", models.CharField(blank=True, max_length=100)),
                ("content_hash", models.CharField(max_length=64)),
                ("meta", models.JSONField(blank=True, default=dict)),
                ("dataset", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="pairs", to="corpus.dataset")),
                ("prompt", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="pairs", to="corpus.prompt")),
                ("response_a", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="pairs_as_a", to="corpus.response")),
                ("response_b", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="pairs_as_b", to="corpus.response")),
            ],
            options={
                "db_table": "annotation_pair",
                "indexes": [models.Index(fields=["dataset", "category"], name="pair_dataset_category")],
                "constraints": [
                    models.UniqueConstraint(fields=("dataset", "source_key"), name="pair_key_unique"),
                    models.CheckConstraint(condition=models.Q(("turn__gte", 1)), name="pair_turn_positive"),
                ],
            },
        ),
        migrations.CreateModel(
            name="HumanVote",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("source", models.CharField(choices=[("arena_user", "Chatbot Arena user"), ("pandalm_annotator", "PandaLM annotator"), ("mtbench_expert", "MT-Bench expert"), ("hh_rlhf", "hh-rlhf crowdworker"), ("llmbar", "LLMBar gold label"), ("generic", "Imported vote"), ("calibration", "Calibration-set label")], max_length=32)),
                ("voter_id", models.CharField(max_length=200)),
                ("outcome", models.CharField(choices=OUTCOMES, max_length=16)),
                ("strength", models.PositiveSmallIntegerField(blank=True, null=True)),
                ("row_hash", models.CharField(max_length=64)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("import_job", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="votes", to="corpus.importjob")),
                ("pair", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="human_votes", to="corpus.pair")),
            ],
            options={
                "db_table": "annotation_humanvote",
                "indexes": [models.Index(fields=["pair", "voter_id"], name="humanvote_pair_voter")],
                "constraints": [
                    models.UniqueConstraint(fields=("pair", "row_hash"), name="humanvote_row_unique"),
                    models.CheckConstraint(condition=models.Q(("outcome__in", ["A", "B", "tie", "both_bad"])), name="humanvote_outcome_valid"),
                    models.CheckConstraint(condition=models.Q(("strength__isnull", True), ("strength__in", [1, 2]), _connector="OR"), name="humanvote_strength_valid"),
                ],
            },
        ),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=state_operations, database_operations=[]),
    ]
