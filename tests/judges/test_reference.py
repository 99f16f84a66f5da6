"""A judge that reads a reference answer (issue 12 item 5): the template takes `{reference}`
from the pair's meta (else its prompt's), the fingerprint changes when a reference is used
and not before, and a pair without one is not judged."""

from __future__ import annotations

from typing import Any

import pytest

from judges import services
from judges.core.client import ChatResult
from judges.core.runner import PairPayload, judge_one
from judges.core.templates import REFERENCE_END, REFERENCE_START, messages_for_order
from tests.factories import PairFactory, PromptFactory
from tests.judges.test_core_config import make_config

REF_TEMPLATE = "[Question]\n{question}\n[Reference]\n{reference}\n[A]\n{answer_a}\n[B]\n{answer_b}"


def test_a_judge_without_a_reference_keeps_its_fingerprint() -> None:
    plain = make_config()
    with_reference = make_config(reference_field="reference")

    assert "reference_field" not in plain.fingerprint_payload()
    assert with_reference.fingerprint_payload()["reference_field"] == "reference"
    assert with_reference.fingerprint() != plain.fingerprint()
    # The hashed payload of a judge from before the field: what it was, key for key.
    assert set(plain.fingerprint_payload()) == {
        "schema", "provider", "model_id", "model_revision", "template_system", "template_user",
        "rubric", "tie_policy", "swap_policy", "parse_mode", "temperature", "top_p", "seed",
        "max_tokens", "top_logprobs",
    }  # fmt: skip


def test_a_bad_reference_field_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="reference_field"):
        make_config(reference_field="has spaces")
    with pytest.raises(ValueError, match="only a judge with a prompt template"):
        make_config(provider="transformers_reward", reference_field="reference")


def test_the_reference_fills_its_placeholder_in_both_orders() -> None:
    config = make_config(reference_field="reference", template_user=REF_TEMPLATE)

    ab, ba = (
        messages_for_order(
            config, question="Q?", answer_a="one", answer_b="two", order=o, reference="42"
        )[-1]["content"]
        for o in ("ab", "ba")
    )

    assert "[Reference]\n42\n[A]\none\n[B]\ntwo" in ab
    assert "[Reference]\n42\n[A]\ntwo\n[B]\none" in ba


def test_a_template_without_the_placeholder_gets_the_reference_appended() -> None:
    config = make_config(reference_field="reference")  # MT-Bench's pair-v2, no {reference}
    plain = make_config()

    with_reference = messages_for_order(
        config, question="Q?", answer_a="one", answer_b="two", order="ab", reference="{answer_a}"
    )
    ignored = messages_for_order(
        plain, question="Q?", answer_a="one", answer_b="two", order="ab", reference="42"
    )

    user = with_reference[-1]["content"]
    # Appended between MT-Bench's markers, and never expanded as a placeholder.
    assert user.endswith(f"{REFERENCE_START}\n{{answer_a}}\n{REFERENCE_END}")
    assert REFERENCE_START not in ignored[-1]["content"]  # a judge without the field


class CountingClient:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def answer(self, messages: Any, sampling: Any) -> ChatResult:
        self.calls.append(messages)
        return ChatResult(content="[[A]]", usage={}, latency_s=0.0, attempts=1, logprobs=None)


def test_a_pair_without_its_reference_is_not_judged() -> None:
    config = make_config(reference_field="reference")
    client = CountingClient()

    missing = judge_one(config, client, PairPayload(1, "Q?", "one", "two"), "ab")
    found = judge_one(config, client, PairPayload(2, "Q?", "one", "two", "42"), "ab")

    assert missing.status == "error"
    assert "no reference answer in its meta field 'reference'" in str(missing.error)
    assert found.status == "ok"
    assert len(client.calls) == 1
    assert "42" in client.calls[0][-1]["content"]


def test_runs_read_the_reference_from_the_pair_else_its_prompt(db: None, settings: Any) -> None:
    settings.JUDGE_DEFAULT_BASE_URL = "http://127.0.0.1:9/v1"
    prompt = PromptFactory(meta={"gold": "from the prompt"})
    own = PairFactory(prompt=prompt, meta={"gold": "from the pair"})
    inherited = PairFactory(prompt=prompt)
    bare = PairFactory()
    config = services.judge_config_build(preset_id="mt-bench", model_id="m", reference_field="gold")
    plain = services.judge_config_build(preset_id="mt-bench", model_id="m")
    first = services.judge_version_get_or_create(config=plain, name="ref-judge").judge
    second = services.judge_version_get_or_create(config=config, name="ref-judge").judge

    payloads = list(services._payloads(second, [own.pk, inherited.pk, bare.pk], {}))
    without = list(services._payloads(first, [own.pk], {}))

    assert [p.reference for p in payloads] == ["from the pair", "from the prompt", None]
    assert without[0].reference is None
    # Two versions of one judge that differ only by the reference: compared as versions.
    assert (first.version, second.version) == (1, 2)
    assert first.fingerprint != second.fingerprint
    assert second.config["reference_field"] == "gold"


def test_the_judge_form_makes_a_reference_version(
    db: None, lead_client: Any, settings: Any
) -> None:
    settings.JUDGE_DEFAULT_BASE_URL = "http://127.0.0.1:9/v1"
    form = {
        "name": "form-judge",
        "provider": "openai_compatible",
        "preset": "mt-bench",
        "model_id": "m",
        "temperature": 0,
        "max_tokens": 512,
        "top_logprobs": 0,
        "tie_policy": "allow_tie",
        "swap_policy": "both",
    }

    lead_client.post("/judges/new/", form)
    lead_client.post("/judges/new/", {**form, "reference_field": "gold"})
    bad = lead_client.post("/judges/new/", {**form, "reference_field": "two words"})

    from judges.models import Judge

    versions = list(Judge.objects.filter(name="form-judge").order_by("version"))
    assert [(j.version, j.config["reference_field"]) for j in versions] == [(1, ""), (2, "gold")]
    assert bad.status_code == 400 and "reference_field" in bad.content.decode()
