"""factory_boy factories for the data model."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import factory
from django.contrib.auth.models import User
from django.utils import timezone

from annotation import models as am
from corpus import models as dm
from judges import models as jm


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("correct-horse-battery")


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = dm.Dataset

    name = factory.Sequence(lambda n: f"dataset-{n}")


class _TextFactory(factory.django.DjangoModelFactory):
    """A row identified by the hash of its text (prompts and responses)."""

    class Meta:
        abstract = True

    content_hash = factory.LazyAttribute(lambda o: sha(o.text))


class PromptFactory(_TextFactory):
    class Meta:
        model = dm.Prompt

    dataset = factory.SubFactory(DatasetFactory)
    text = factory.Sequence(lambda n: f"Question number {n}?")


class ResponseFactory(_TextFactory):
    class Meta:
        model = dm.Response

    prompt = factory.SubFactory(PromptFactory)
    model_name = factory.Sequence(lambda n: f"model-{n % 4}")
    text = factory.Sequence(lambda n: f"Answer {n}.")


class PairFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = dm.Pair

    prompt = factory.SubFactory(PromptFactory)
    dataset = factory.LazyAttribute(lambda o: o.prompt.dataset)
    source_key = factory.Sequence(lambda n: f"pair-{n}")
    response_a = factory.SubFactory(ResponseFactory, prompt=factory.SelfAttribute("..prompt"))
    response_b = factory.SubFactory(ResponseFactory, prompt=factory.SelfAttribute("..prompt"))
    content_hash = factory.LazyAttribute(lambda o: sha(o.source_key))


class JudgeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = jm.Judge

    name = factory.Sequence(lambda n: f"judge-{n}")
    provider = jm.Judge.Provider.IMPORTED
    model_id = "gpt-4o-2024-08-06"
    fingerprint = factory.LazyAttribute(lambda o: sha(f"{o.name}:{o.model_id}"))


class VerdictFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = jm.Verdict

    judge = factory.SubFactory(JudgeFactory)
    pair = factory.SubFactory(PairFactory)
    outcome = "A"
    outcome_ab = "A"
    status_ab = jm.ParseStatus.OK

    class Params:
        # Both orders parsed and agreeing on ``outcome``.
        both_orders = factory.Trait(
            outcome_ab=factory.SelfAttribute("outcome"),
            outcome_ba=factory.SelfAttribute("outcome"),
            consistent=True,
            status_ba=jm.ParseStatus.OK,
        )


class ClassificationRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = jm.ClassificationRun

    dataset = factory.SubFactory(DatasetFactory)
    status = jm.ClassificationRun.Status.PENDING
    # A running run is held by a live worker (its lease just renewed), unless a test says not.
    heartbeat_at = factory.LazyAttribute(
        lambda run: timezone.now() if run.status == "running" else None
    )


class AssignmentFactory(factory.django.DjangoModelFactory):
    """An item served to an annotator (``item`` is always given), submitted unless told not."""

    class Meta:
        model = am.Assignment

    annotator = factory.SubFactory(UserFactory)
    a_on_left = True
    status = am.Assignment.Status.SUBMITTED
    served_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(lambda o: o.served_at + timedelta(minutes=10))


class LabelFactory(factory.django.DjangoModelFactory):
    """An annotator's label in the pair's terms, on the item and by the person of its
    assignment; ``chose_left`` follows from the outcome and the side A was shown on."""

    class Meta:
        model = am.Label

    assignment = factory.SubFactory(AssignmentFactory)
    item = factory.SelfAttribute("assignment.item")
    annotator = factory.SelfAttribute("assignment.annotator")
    outcome = "A"
    chose_left = factory.LazyAttribute(
        lambda o: (
            None
            if o.outcome in ("tie", "both_bad")
            else (o.outcome == "A") == o.assignment.a_on_left
        )
    )
    submission_key = factory.LazyFunction(uuid.uuid4)
