"""Cards that show another app's data on a page are fragments served by the app that owns the
data: the judges' cards and the "how sure are we" card on the audit page, the judges and
response classes card on the dataset page. Each is loaded by htmx (`hx-get`), works as a
link without JavaScript (`href`, the same view as a page), and checks who may see it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from annotation.models import Audit, AuditItem
from corpus.models import Dataset
from judges.models import Judge, JudgeRun
from tests.factories import DatasetFactory, JudgeFactory, PairFactory, PromptFactory, VerdictFactory

HX = {"HX-Request": "true"}


@dataclass
class Scene:
    dataset: Dataset
    audit: Audit
    judge: Judge
    other: Judge  # a judge of the dataset that is not the audit's
    run: JudgeRun  # a run over the audit's items
    elsewhere: JudgeRun  # a run of the same judge over the whole dataset


@pytest.fixture
def scene(lead: User) -> Scene:
    dataset = DatasetFactory(name="cards")
    pairs = [PairFactory(prompt=PromptFactory(dataset=dataset)) for _ in range(3)]
    judge = JudgeFactory(name="gpt-judge")
    other = JudgeFactory(name="other-judge")
    for pair in pairs:
        VerdictFactory(judge=judge, pair=pair)
    VerdictFactory(judge=other, pair=pairs[0])
    audit = Audit.objects.create(
        name="cards audit", dataset=dataset, created_by=lead, target_size=2
    )
    audit.judges.add(judge)
    for position, pair in enumerate(pairs[:2]):
        AuditItem.objects.create(
            audit=audit, pair=pair, stratum="random", inclusion_probability=1.0, position=position
        )
    run = JudgeRun.objects.create(
        judge=judge,
        dataset=dataset,
        pair_ids=[p.pk for p in pairs[:2]],
        scope=f"audit {audit.pk}",
        status="done",
        total=2,
        done=2,
    )
    elsewhere = JudgeRun.objects.create(judge=judge, dataset=dataset, status="running", total=3)
    return Scene(dataset, audit, judge, other, run, elsewhere)


def cards_url(scene: Scene) -> str:
    return f"{reverse('judge_cards')}?judge={scene.judge.pk}&scope=audit+{scene.audit.pk}"


def test_the_audit_page_loads_the_judges_cards_and_the_precision_card(
    lead_client: Client, scene: Scene
) -> None:
    page = lead_client.get(reverse("audit_detail", args=[scene.audit.pk])).content.decode()

    for url in (escape(cards_url(scene)), reverse("audit_precision", args=[scene.audit.pk])):
        assert f'hx-get="{url}"' in page and f'href="{url}"' in page
    assert reverse("audit_judge_run", args=[scene.audit.pk]) in page  # the audit's own action


def test_the_judges_cards_show_each_judge_and_its_runs_over_the_scope(
    lead_client: Client, scene: Scene
) -> None:
    fragment = lead_client.get(cards_url(scene), headers=HX).content.decode()
    page = lead_client.get(cards_url(scene)).content.decode()

    assert fragment.lstrip().startswith('<div id="judge-cards"') and "<html" not in fragment
    assert "<html" in page and 'id="judge-cards"' in page  # the same cards as a page
    assert reverse("judge_detail", args=[scene.judge.pk]) in fragment
    assert "3 verdicts" in fragment
    assert reverse("judge_run_detail", args=[scene.run.pk]) in fragment
    assert reverse("judge_run_detail", args=[scene.elsewhere.pk]) not in fragment
    assert "other-judge" not in fragment


def test_the_judges_cards_name_a_bad_query(lead_client: Client, scene: Scene) -> None:
    response = lead_client.get(reverse("judge_cards"), {"judge": "abc"}, headers=HX)

    assert response.status_code == 400
    assert "judge:" in response.content.decode()


def test_the_dataset_page_loads_the_judges_card(lead_client: Client, scene: Scene) -> None:
    url = reverse("dataset_judging", args=[scene.dataset.name])

    page = lead_client.get(reverse("dataset_detail", args=[scene.dataset.name])).content.decode()
    card = lead_client.get(url, headers=HX).content.decode()

    assert f'hx-get="{url}"' in page and f'href="{url}"' in page
    assert "judge verdicts" not in page  # the judges' data comes only with the card
    assert card.lstrip().startswith('<section class="card" id="response-classes">')
    assert "4 judge verdicts" in card
    assert "gpt-judge v1</a> 3" in card and "other-judge v1</a> 1" in card


def test_the_precision_card_is_empty_for_htmx_until_there_is_a_report(
    lead_client: Client, scene: Scene
) -> None:
    url = reverse("audit_precision", args=[scene.audit.pk])

    fragment = lead_client.get(url, headers=HX)
    page = lead_client.get(url)

    assert fragment.status_code == 200 and fragment.content.decode().strip() == ""
    assert "No report of this audit yet" in page.content.decode()


def fragment_urls(scene: Scene) -> list[str]:
    return [
        cards_url(scene),
        reverse("dataset_judging", args=[scene.dataset.name]),
        reverse("audit_precision", args=[scene.audit.pk]),
    ]


def test_only_leads_get_the_fragments(
    client: Client, annotator_client: Client, outsider_client: Client, scene: Scene
) -> None:
    scene.audit.annotators.add(User.objects.get(username="ana-annotator"))

    for url in fragment_urls(scene):
        assert annotator_client.get(url, headers=HX).status_code == 403
        assert outsider_client.get(url, headers=HX).status_code == 403
        anonymous = client.get(url, headers=HX)
        assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
