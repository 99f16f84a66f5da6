"""Every URL pattern, as four personas: anonymous, an annotator of another audit, an annotator
of the audit, a lead. Each pattern is classified below by who may use it; the walk checks the
status each persona gets, and that nothing an annotator is served carries a model name, a
judge's verdict or another annotator's label (blinding). A new URL pattern fails the test
until it is classified here.

The walk GETs every pattern (POSTs an empty body where only POST is taken), then POSTs to
every pattern a persona may not use, and checks that the refusals changed nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from annotation import queue
from annotation.models import Assignment, Audit, AuditItem, Label
from config.roles import ensure_groups
from corpus.models import HumanVote, ImportJob
from judges.models import ClassificationRun, JudgeFamily, JudgeRun, ModelFamily, Verdict
from tests.factories import (
    DatasetFactory,
    JudgeFactory,
    PairFactory,
    PromptFactory,
    ResponseFactory,
    UserFactory,
    VerdictFactory,
)

MODEL_SECRET = "model-secret-gpt9"
JUDGE_SECRET = "judge-secret-omega"
VERDICT_SECRET = "verdict-secret-raw-output"
OTHERS_SECRET = "others-secret-rationale"
SECRETS = (MODEL_SECRET, JUDGE_SECRET, VERDICT_SECRET, OTHERS_SECRET)
PERSONAS = ("anonymous", "other", "annotator", "lead")

# Who may use each pattern (by URL name); what each persona then gets on GET:
REFUSED = {
    # pages: anonymous to the login page; leads-only pages 403; another audit's pages 403
    "lead page": {"anonymous": 302, "other": 403, "annotator": 403},
    "member page": {"anonymous": 302, "other": 403, "lead": 403},
    "api lead": {"anonymous": 401, "other": 403, "annotator": 403},
    "api member": {"anonymous": 401, "other": 403, "lead": 403},
    # an assignment is looked up among the user's own: anyone else's is not found
    "api own assignment": {"anonymous": 401, "other": 404, "lead": 404},
    "api own label": {"anonymous": 401, "other": 404, "lead": 404},
    "user page": {"anonymous": 302},
    "api user": {"anonymous": 401},
    "admin": {"anonymous": 302, "other": 302, "annotator": 302, "lead": 302},  # not staff
    "public": {},
}
CLASSES: dict[str, tuple[str, ...]] = {
    "public": ("login", "logout", "api_docs", "api_schema", "api_token"),
    "user page": ("home",),
    "api user": ("api-audits",),
    "member page": (
        "workspace", "label_submit", "item_skip", "label_undo", "my_labels", "label_revise",
    ),
    "api member": ("api-audit-my-labels", "api-audit-next", "api-audit-undo"),
    "api own assignment": ("api-assignment-label", "api-assignment-skip"),
    "lead page": (
        "audit_export", "audit_export_download", "audit_export_manifest", "dataset_flags",
        "audit_model_card",
        "import_list", "import_new", "import_job", "judge_list", "judge_create",
        "judge_detail", "judge_run_start", "judge_run_detail", "judge_run_stop", "judge_cards",
        "dataset_judging", "classification_run_start", "classification_run_detail",
        "report_index", "audit_report", "audit_report_recompute", "audit_gate",
        "audit_precision", "audit_refusal_csv", "dataset_report", "dataset_refusal_csv",
        "dataset_report_recompute", "dataset_list", "dataset_detail", "audit_list", "audit_create",
        "audit_availability", "audit_detail", "audit_annotators", "audit_status",
        "audit_judge_run", "audit_rejudge", "adjudication_queue", "adjudication_item", "audit_grow",
        "audit_overlap", "audit_options", "audit_gold", "audit_gold_remove", "annotator_set_aside",
        "class_adjudicate", "audit_refusal_instrument", "dataset_refusal_instrument",
        "audit_compare", "audit_gate_candidate", "dataset_compare",
        "dataset_families",
        "pair_list", "pair_detail", "audit_items",
    ),
    "api lead": (
        "api-audit-export", "api-exports", "api-exports-manifest", "api-dataset-flags",
        "api-audit-model-card",
        "api_import_collection",
        "api_import_detail", "api-dataset-pairs", "api-audit-availability", "api-audit-detail",
        "api-audit-status", "api-audit-annotators", "api-audit-judge-runs", "api-audit-rejudge",
        "api-adjudication-queue", "api-item-detail", "api-item-adjudicate", "api-item-classes",
        "api-datasets",
        "api-dataset-detail", "api-judges", "api-judge-detail", "api-judge-runs",
        "api-judge-run-detail", "api-judge-run-stop", "api-dataset-classify",
        "api-classification-run-detail", "api-audit-gate", "api-audit-gate-check",
        "api-audit-report", "api-audit-report-history", "api-audit-report-recompute",
        "api-dataset-report", "api-dataset-report-history", "api-dataset-report-recompute",
        "api-audit-report-model", "api-dataset-report-model",
        "api-audit-grow", "api-audit-overlap", "api-audit-options", "api-audit-capacity",
        "api-audit-quality", "api-audit-gold", "api-audit-set-aside",
        "api-audit-compare", "api-dataset-compare",
        "api-dataset-families",
    ),
    "api own label": ("api-label-revise",),
}  # fmt: skip
# The audit's detail over the API is for its members too (annotators see their own audits).
MEMBERS_TOO = {"api-audit-detail": {"annotator": 200}}


@dataclass(frozen=True)
class Route:
    name: str
    path: str  # with the parameters filled in
    admin: bool


def _patterns(resolvers: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in resolvers:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry.url_patterns, prefix + str(entry.pattern))
        else:
            yield prefix + str(entry.pattern), entry


def _fill(route: str, values: dict[str, str]) -> str:
    """A concrete path for a route: a regex's named groups, or `<int:pk>` and friends."""
    route = route.lstrip("^").rstrip("$").replace("\\.", ".")
    route = re.sub(r"\(\?P<fmt>([^)|]*)[^)]*\)", r"\1", route)  # the first format named
    route = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values.get(m.group(1), values["pk"]), route)
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values.get(m.group(1), values["pk"]), route)


@dataclass
class World:
    clients: dict[str, Client]
    routes: list[Route]
    counts: Callable[[], tuple[int, ...]]
    held: Assignment  # the annotator's held item


@pytest.fixture
def world(db: None) -> World:
    lead_group, annotator_group = ensure_groups()
    lead = UserFactory(username="lena-lead")
    lead.groups.add(lead_group)
    people = {}
    for name in ("ana", "otto", "olaf"):
        people[name] = UserFactory(username=name)
        people[name].groups.add(annotator_group)
    dataset = DatasetFactory(name="secrets")
    judge = JudgeFactory(name=JUDGE_SECRET, model_id=JUDGE_SECRET)
    pairs = []
    for i in range(3):
        prompt = PromptFactory(dataset=dataset, text=f"Question {i}?")
        pair = PairFactory(
            dataset=dataset,
            prompt=prompt,
            response_a=ResponseFactory(prompt=prompt, text=f"answer-a{i}", model_name=MODEL_SECRET),
            response_b=ResponseFactory(prompt=prompt, text=f"answer-b{i}", model_name=MODEL_SECRET),
        )
        VerdictFactory(judge=judge, pair=pair, outcome="A", raw_ab=VERDICT_SECRET)
        pairs.append(pair)
    audit = Audit.objects.create(
        name="mine", dataset=dataset, target_size=3, overlap_k=2, created_by=lead
    )
    audit.judges.add(judge)
    audit.annotators.add(people["ana"], people["otto"])
    for position, pair in enumerate(pairs):
        AuditItem.objects.create(
            audit=audit, pair=pair, stratum="random", inclusion_probability=1.0, position=position
        )
    other = Audit.objects.create(
        name="theirs", dataset=dataset, target_size=3, overlap_k=1, created_by=lead
    )
    other.annotators.add(people["olaf"])
    # otto labels the first item, with a rationale ana must never see; ana holds it next.
    held = queue.queue_next(audit=audit, annotator=people["otto"])
    assert held is not None
    queue.label_submit(
        assignment=held, choice="left", submission_key="00000000-0000-0000-0000-000000000001",
        rationale=OTHERS_SECRET,
    )  # fmt: skip
    mine = queue.queue_next(audit=audit, annotator=people["ana"])
    assert mine is not None
    job = ImportJob.objects.create(dataset=dataset, format="generic", filename="x.csv")
    run = JudgeRun.objects.create(judge=judge, dataset=dataset, total=3)
    classification = ClassificationRun.objects.create(dataset=dataset)
    pks = {
        "audit": audit.pk, "item": mine.item_id, "assignment": mine.pk, "judge": judge.pk,
        "judge-runs": run.pk, "classification": classification.pk, "imports": job.pk,
        "labels": Label.objects.get(annotator=people["otto"]).pk,
    }  # fmt: skip

    def values_for(path: str) -> dict[str, str]:
        pk = next(
            (
                str(value)
                for key, value in (
                    ("judge-runs", pks["judge-runs"]),
                    ("judges/runs", pks["judge-runs"]),
                    ("classification", pks["classification"]),
                    ("imports", pks["imports"]),
                    ("api/labels", pks["labels"]),
                    ("assignments", pks["assignment"]),
                    ("items", pks["item"]),
                    ("judges", pks["judge"]),
                    ("audit", pks["audit"]),
                )
                if key in path
            ),
            str(pks["audit"]),
        )
        return {
            "pk": pk,
            "name": dataset.name,
            "item_id": str(pks["item"]),
            "label_id": str(pks["labels"]),
            "user_id": str(people["ana"].pk),
            "username": "ana",
            "assignment_id": str(pks["assignment"]),
            "object_id": str(pairs[0].pk),
            "app_label": "corpus",
        }

    routes = []
    for route, pattern in _patterns(get_resolver().url_patterns):
        if pattern.name is None and not route.startswith("admin/"):
            continue
        if pattern.name in ("login", "logout") and route.startswith("admin/"):
            continue  # the admin's own login page is for everyone
        routes.append(
            Route(
                pattern.name or route, _fill(route, values_for(route)), route.startswith("admin/")
            )
        )
    clients = {"anonymous": Client()}
    for persona, user in (("other", people["olaf"]), ("annotator", people["ana"]), ("lead", lead)):
        clients[persona] = Client()
        clients[persona].force_login(user)

    def counts() -> tuple[int, ...]:
        return (
            Label.objects.count(), Assignment.objects.count(), HumanVote.objects.count(),
            Verdict.objects.count(), JudgeRun.objects.count(), ClassificationRun.objects.count(),
            ImportJob.objects.count(), Audit.objects.count(), User.objects.count(),
            ModelFamily.objects.count(), JudgeFamily.objects.count(),
        )  # fmt: skip

    return World(clients, routes, counts, mine)


def _class_of(route: Route) -> str:
    if route.admin:
        return "admin"
    found = [kind for kind, names in CLASSES.items() if route.name in names]
    assert found, f"URL {route.name!r} ({route.path}) is not classified in {__file__}"
    return found[0]


def _answer(client: Client, route: Route) -> Any:
    """GET the path; for a view that only takes POST (405 to GET), POST an empty body: the
    access check must come before the body is read. (Logging out is not tried.)"""
    response = client.get("/" + route.path)
    if response.status_code == 405 and route.name != "logout":
        return client.post("/" + route.path, {})
    return response


def test_every_pattern_answers_each_persona_as_classified(world: World) -> None:
    wrong = []
    for route in world.routes:
        kind = _class_of(route)
        expected = {**REFUSED[kind], **MEMBERS_TOO.get(route.name, {})}
        for persona in PERSONAS:
            response = _answer(world.clients[persona], route)
            status = response.status_code
            where = f"/{route.path} as {persona}: {status}"
            if persona in expected:
                if status != expected[persona]:
                    wrong.append(f"{where}, expected {expected[persona]}")
                elif status == 302:
                    login = "/admin/login/" if kind == "admin" else "/accounts/login/"
                    if not response["Location"].startswith(login):
                        wrong.append(f"{where}, redirected to {response['Location']}")
            elif status in (401, 403) or status >= 500:
                wrong.append(f"{where}, expected it to be served")
    assert wrong == [], "\n".join(wrong)
    assert len(world.routes) > 200


def test_annotators_are_served_no_model_names_verdicts_or_others_labels(world: World) -> None:
    leaked = []
    for route in world.routes:
        for persona in ("annotator", "other"):
            response = world.clients[persona].get("/" + route.path)
            if response.status_code != 200:
                continue
            body = b"".join(response.streaming_content) if response.streaming else response.content
            text = body.decode(errors="replace")
            leaked += [f"/{route.path} as {persona}: {s}" for s in SECRETS if s in text]
    assert leaked == [], "\n".join(leaked)
    # The workspace itself was among them, and serves ana her item.
    workspace = world.clients["annotator"].get(
        f"/audits/{Audit.objects.get(name='mine').pk}/label/"
    )
    page = workspace.content.decode()
    assert workspace.status_code == 200
    assert [i for i in range(3) if f"answer-a{i}" in page and f"answer-b{i}" in page] != []


def test_refused_writes_change_nothing(world: World) -> None:
    before = world.counts()
    wrong = []
    for route in world.routes:
        kind = _class_of(route)
        expected = {**REFUSED[kind], **MEMBERS_TOO.get(route.name, {})}
        for persona, status in expected.items():
            if status in (301, 302, 401, 403, 404):
                response = world.clients[persona].post("/" + route.path, {})
                # 405: a view that takes no POST refuses it before checking who asks
                if response.status_code not in (status, 405):
                    wrong.append(f"POST /{route.path} as {persona}: {response.status_code}")
    assert wrong == [], "\n".join(wrong)
    assert world.counts() == before
