"""Hostile imported text in real Chromium: no script runs, nothing loads from another origin.

A generic file whose every field (keys, prompts, responses, model names, categories, meta,
voters, judge names, raw judge output) carries one of the payload templates
(tests/security/payloads.py; a pair holding all of them at once comes first in the audit) is
imported through the real importer, and a file with hostile column names is refused (its
errors quote them). Annotators' rationales and the audit's guidelines carry them too. Then
every page that shows such text is opened as the annotator, another annotator and a staff
lead: the workspace, the annotator's labels, the audit and adjudication pages, datasets,
judges, runs, imports, reports and the admin. On each page: no dialog, `window.__xss` never
set, no request to any other origin (every one is recorded and aborted), no page error, no
Content-Security-Policy violation (the markup never reached the page as markup), and the
marker text of the payloads is on the page (it was shown, as text).
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.test import Client

from analysis.services import snapshot_compute
from annotation import queue
from annotation.models import Audit, AuditItem, Label
from config.roles import ensure_groups
from corpus.importers.services import import_file
from corpus.models import Dataset, ImportJob, Pair, Prompt, Response
from judges.models import Judge, JudgeRun, Verdict
from tests.factories import UserFactory
from tests.security.payloads import payloads

pytestmark = pytest.mark.browser

PAYLOADS = payloads()
ALL = "\n\n".join(PAYLOADS)


def hostile_rows() -> Iterator[dict[str, Any]]:
    yield {
        "pair_id": "all-of-them",
        "prompt": ALL,
        "response_a": ALL,
        "response_b": ALL + "\n\nMARK-b",
        "model_a": "MARK-model-a " + PAYLOADS[0][:150],
        "model_b": "MARK-model-b " + PAYLOADS[1][:150],
        "category": PAYLOADS[2][:100],
        "votes": [{"voter_id": PAYLOADS[3][:200], "outcome": "A"}],
        "verdicts": [{"judge": "MARK-judge " + PAYLOADS[4][:150], "outcome_ab": "A",
                      "outcome_ba": "B", "raw_ab": ALL, "raw_ba": ALL}],
    }  # fmt: skip
    for n, text in enumerate(PAYLOADS):
        yield {
            "pair_id": f"k{n}:{text}"[:255],
            "prompt": text,
            "response_a": text + " (A)",
            "response_b": text + " (B)",
            "model_a": f"a{n} {text}"[:200],
            "model_b": f"b{n} {text}"[:200],
            "category": text[:100],
            "meta": {"note": text, text[:50]: n},
            "votes": [{"voter_id": text[:200], "outcome": "AB"[n % 2]}],
            "verdicts": [{"judge": f"j{n} {text}"[:200], "outcome_ab": "A", "outcome_ba": "A",
                          "raw_ab": text, "raw_ba": text, "margin": 1.0}],
        }  # fmt: skip


@pytest.fixture
def hostile(transactional_db: None, tmp_path: Path, settings: Any) -> dict[str, Any]:
    settings.MEDIA_ROOT = tmp_path / "media"
    lead_group, annotator_group = ensure_groups()
    lead = UserFactory(username="lena-lead", is_staff=True, is_superuser=True)
    lead.groups.add(lead_group)
    people = {}
    for name in ("ana", "otto", "olga"):
        people[name] = UserFactory(username=name)
        people[name].groups.add(annotator_group)
    dataset = Dataset.objects.create(name="hostile", description=PAYLOADS[5])
    data = tmp_path / "hostile.jsonl"
    data.write_text("\n".join(json.dumps(row) for row in hostile_rows()) + "\n")
    job = import_file(dataset=dataset, fmt="generic", path=data, name=PAYLOADS[9] + ".jsonl")
    assert job.status == ImportJob.Status.DONE, job.errors
    refused = tmp_path / "refused.csv"
    with refused.open("w", newline="") as handle:
        csv.writer(handle).writerow(["pair_id", *(p[:60] for p in PAYLOADS[:6])])
    bad = import_file(dataset=dataset, fmt="generic", path=refused, name=PAYLOADS[6][:150] + ".csv")
    assert bad.status == ImportJob.Status.FAILED and len(bad.errors) >= 6

    judges = list(Judge.objects.order_by("pk")[:2])
    audit = Audit.objects.create(
        name="MARK-audit " + PAYLOADS[7], dataset=dataset, target_size=1, overlap_k=3,
        created_by=lead, guidelines=ALL, criteria=["clarity"],
    )  # fmt: skip
    audit.judges.add(*judges)
    audit.annotators.add(*people.values())
    first = Pair.objects.get(dataset=dataset, source_key="all-of-them")
    AuditItem.objects.create(
        audit=audit, pair=first, stratum="random", inclusion_probability=1.0, position=0
    )
    # Two annotators disagree on the first item, in hostile words; the third is served it.
    for name, choice in (("otto", "left"), ("olga", "right")):
        held = queue.queue_next(audit=audit, annotator=people[name])
        assert held is not None and held.item.pair_id == first.pk
        queue.label_submit(
            assignment=held, choice=choice, submission_key=uuid.uuid4(), rationale=ALL,
            criteria={"clarity": choice},
        )  # fmt: skip
    run = JudgeRun.objects.create(
        judge=judges[0], dataset=dataset, status="failed", error=ALL, total=1, scope=PAYLOADS[8]
    )
    snapshot_compute(audit=audit)
    snapshot_compute(dataset=dataset)
    label = Label.objects.filter(item__pair=first).first()
    verdict = Verdict.objects.filter(pair=first).first()
    assert label is not None and verdict is not None
    item = AuditItem.objects.get(audit=audit, pair=first)
    a = f"/audits/{audit.pk}"
    pages = {
        "ana": ["/", f"{a}/label/"],
        "otto": [f"{a}/mine/"],
        "lena-lead": [
            "/audits/", f"{a}/", f"{a}/adjudicate/", f"{a}/adjudicate/{item.pk}/",
            "/datasets/", "/datasets/hostile/", "/judges/datasets/hostile/", "/judges/",
            "/judges/datasets/hostile/families/",
            f"/judges/{judges[0].pk}/", f"/judges/runs/{run.pk}/", "/imports/",
            f"/imports/{job.pk}/", f"/imports/{bad.pk}/", "/reports/",
            f"/reports/audit/{audit.pk}/", "/reports/dataset/hostile/",
            f"/reports/audit/{audit.pk}/precision/",
            "/admin/corpus/pair/", f"/admin/corpus/pair/{first.pk}/change/",
            "/admin/corpus/prompt/", f"/admin/corpus/prompt/{first.prompt_id}/change/",
            "/admin/corpus/response/", f"/admin/corpus/response/{first.response_a_id}/change/",
            "/admin/corpus/humanvote/", "/admin/corpus/importjob/",
            f"/admin/corpus/importjob/{bad.pk}/change/",
            "/admin/judges/judge/", "/admin/judges/verdict/",
            f"/admin/judges/verdict/{verdict.pk}/change/", "/admin/judges/judgerun/",
            "/admin/annotation/audit/",
            f"/admin/annotation/label/{label.pk}/change/",
        ],
    }  # fmt: skip
    return {"users": {**people, "lena-lead": lead}, "pages": pages}


def session_cookie(user: User, url: str) -> dict[str, str]:
    client = Client()
    client.force_login(user)
    return {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": url}


def test_no_script_runs_and_nothing_loads_from_another_origin(
    hostile: dict[str, Any], live_server: Any, browser: Any, settings: Any
) -> None:
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    origin = urlsplit(live_server.url).netloc
    problems: list[str] = []
    visited = 0
    where = {"page": ""}  # the page being checked, for the messages
    for username, paths in hostile["pages"].items():
        context = browser.new_context()
        context.add_cookies([session_cookie(hostile["users"][username], live_server.url)])
        context.set_default_timeout(20_000)

        def outside(route: Any) -> None:
            url = route.request.url
            if urlsplit(url).netloc != origin:
                problems.append(f"{where['page']}: a request left for {url}")
                route.abort()
            else:
                route.continue_()

        context.route("**/*", outside)
        page = context.new_page()
        page.on(
            "dialog",
            lambda d: (problems.append(f"{where['page']}: dialog {d.message}"), d.dismiss()),
        )
        page.on("pageerror", lambda e: problems.append(f"{where['page']}: page error {e}"))
        page.on(
            "console",
            lambda m: (
                problems.append(f"{where['page']}: {m.text}")
                if m.type == "error" and "Content Security Policy" in m.text
                else None
            ),
        )
        for path in paths:
            where["page"] = f"{path} as {username}"
            response = page.goto(live_server.url + path)
            page.wait_for_load_state("networkidle")
            visited += 1
            if response is None or response.status != 200:
                problems.append(f"{where['page']}: HTTP {response.status if response else '?'}")
                continue
            if page.evaluate("typeof window.__xss") != "undefined":
                problems.append(f"{where['page']}: a payload ran: {page.evaluate('window.__xss')}")
            if "MARK" not in page.inner_text("body"):
                problems.append(f"{where['page']}: shows none of the hostile text")
        context.close()
    assert problems == [], "\n".join(problems)
    assert visited >= 34 and len(PAYLOADS) >= 30
    # The texts went in as they were: the importer keeps hostile text verbatim.
    assert Prompt.objects.filter(text=ALL).exists()
    assert Response.objects.filter(text=PAYLOADS[0] + " (A)").exists()
