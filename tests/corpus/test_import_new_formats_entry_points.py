"""The alpaca-eval, arena-hard and preference formats through every way in: the command's
help, the upload page and the API all read the one format registry."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from corpus.importers.formats import FORMATS, ParseContext
from corpus.importers.readers import RecordFile
from corpus.importers.records import Row, RowError
from corpus.management.commands.import_pairs import Command
from corpus.models import ImportJob, Pair
from judges.models import Verdict
from tests.corpus.test_import_command import DATA, FIXTURES

NEW = ("alpaca-eval", "arena-hard", "preference")
ALPACA = (
    DATA / "alpaca_eval" / "llama-2-70b-chat-hf.alpaca_eval_cot_gpt4_turbo_fn.annotations.json.gz"
)
V01 = FIXTURES / "arena-hard" / "v0.1"
PREF = FIXTURES / "preference" / "conversational.jsonl"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def upload(path: Path) -> SimpleUploadedFile:
    return SimpleUploadedFile(path.name, path.read_bytes())


def test_it_lists_the_new_formats_in_help_and_on_the_upload_page(lead_client: Client) -> None:
    text = Command().create_parser("manage.py", "import_pairs").format_help()
    page = lead_client.get(reverse("import_new")).content.decode()
    for name in NEW:
        assert name in FORMATS
        assert f"  {name}  " in text
        assert f'<option value="{name}">' in page and f"<code>{name}</code>" in page
    assert "--baseline MODEL" in text


@pytest.mark.usefixtures("tasks_inline")
def test_it_imports_each_new_format_through_the_upload_page(
    lead_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    posts = {
        "alpaca-eval": {"data_files": [upload(ALPACA)]},
        "arena-hard": {
            "data_files": [
                upload(V01 / "model_judgment" / "gpt-4-1106-preview" / "llama-3-8b-instruct.jsonl")
            ],
            "answers": [upload(p) for p in sorted((V01 / "model_answer").glob("*.jsonl"))],
            "questions": [upload(V01 / "question.jsonl")],
        },
        "preference": {"data_files": [upload(PREF)]},
    }
    for name, files in posts.items():
        with django_capture_on_commit_callbacks(execute=True):
            response = lead_client.post(
                reverse("import_new"), {"dataset": f"page-{name}", "format": name, **files}
            )
        assert response.status_code == 302, name
    jobs = {job.format: job for job in ImportJob.objects.all()}
    assert {f: j.status for f, j in jobs.items()} == dict.fromkeys(NEW, ImportJob.Status.DONE)
    assert jobs["alpaca-eval"].counts["verdicts_created"] == 805
    assert jobs["preference"].counts["pairs_created"] == 8
    arena = Pair.objects.select_related("response_a").filter(dataset__name="page-arena-hard")
    assert arena.count() == 3 and all(p.response_a.has_text for p in arena)


@pytest.mark.usefixtures("tasks_inline")
def test_it_imports_arena_hard_through_the_api_with_its_side_files_and_baseline(
    lead_token_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    api = lead_token_client
    judgment = V01 / "model_judgment" / "gpt-4-1106-preview" / "claude-3-haiku-20240307.jsonl"
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            reverse("api_import_collection"),
            {
                "format": "arena-hard",
                "dataset": "api-arena-hard",
                "file": upload(judgment),
                "baseline": "gpt-4-0613",
            },
        )
    assert response.status_code == 202
    status = api.get(response.json()["url"]).json()
    assert status["status"] == "done" and status["counts"]["verdicts_created"] == 3
    keys = Pair.objects.values_list("source_key", flat=True)
    assert all(":gpt-4-0613|claude-3-haiku-20240307" in key for key in keys)
    assert Verdict.objects.count() == 3


def test_it_refuses_side_files_and_a_baseline_where_the_format_takes_none(
    lead_client: Client,
) -> None:
    url = reverse("api_import_collection")
    body = {"format": "preference", "dataset": "x"}
    answers = lead_client.post(
        url, {**body, "file": upload(PREF), "answers": upload(V01 / "question.jsonl")}
    )
    assert answers.status_code == 400
    assert answers.json()["answers"] == [
        "the preference format takes no answers or questions files"
    ]
    baseline = lead_client.post(url, {**body, "file": upload(PREF), "baseline": "gpt-4-0314"})
    assert baseline.status_code == 400 and "baseline" in baseline.json()
    page = lead_client.post(
        reverse("import_new"),
        {"dataset": "x", "format": "alpaca-eval", "data_files": [upload(PREF)], "baseline": "m"},
    )
    assert page.status_code == 200 and b"A baseline is for the arena-hard format." in page.content
    assert not ImportJob.objects.exists()


def doc_examples(fmt: str) -> list[dict[str, Any]]:
    """The JSON objects in the ```json blocks of the format's section of docs/import-formats.md."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "import-formats.md").read_text()
    section = doc.split(f"### `{fmt}`:", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    decoder = json.JSONDecoder()
    objects = []
    for block in re.findall(r"```json\n(.*?)```", section, flags=re.DOTALL):
        at = 0
        while block[at:].strip():
            at += len(block[at:]) - len(block[at:].lstrip())
            value, at = decoder.raw_decode(block, at)
            objects.append(value)
    return objects


@pytest.mark.parametrize("fmt", NEW)
def test_it_parses_the_examples_the_docs_show(fmt: str, tmp_path: Path) -> None:
    examples = doc_examples(fmt)
    assert examples
    path = tmp_path / "example.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in examples))
    entries = list(FORMATS[fmt].parse(ParseContext(RecordFile(path))))
    assert [str(e) for e in entries if isinstance(e, RowError)] == []
    assert len([e for e in entries if isinstance(e, Row)]) == len(examples)
