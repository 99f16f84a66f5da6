"""Model families: defaults read from the name, a lead's overrides on a page and over the API
(issue 12 item 4)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from judges import selectors
from judges.core.families import family_clean, family_of
from judges.models import JudgeFamily, ModelFamily
from tests.factories import (
    DatasetFactory,
    JudgeFactory,
    PairFactory,
    PromptFactory,
    VerdictFactory,
)


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("gpt-3.5-turbo", "openai"),
        ("gpt-4o-2024-08-06", "openai"),
        ("o1-preview", "openai"),
        ("o3-mini", "openai"),
        ("text-davinci-003", "openai"),
        ("claude-2.1", "anthropic"),
        ("meta-llama/Llama-3-70B-Instruct", "llama"),
        ("llama-7b", "llama"),
        ("alpaca-7b", "llama"),
        ("vicuna-13b-v1.5", "llama"),
        ("pandalm-7b", "llama"),
        ("Mixtral-8x7B-Instruct", "mistral"),
        ("zephyr-7b-beta", "mistral"),
        ("gemma-3-270m", "google"),
        ("gemini-1.5-pro", "google"),
        ("Qwen2.5-72B", "qwen"),
        ("deepseek-v3", "deepseek"),
        ("phi-3-mini", "phi"),
        ("falcon-40b", "falcon"),
        ("command-r-plus", "cohere"),
        ("yi-34b-chat", "yi"),
        ("bloom-7b", "bigscience"),
        ("opt-7b", "opt"),
        ("pythia-6.9b", "eleutherai"),
        # "gpt" in these names is not OpenAI's.
        ("cerebras-gpt-6.7B", "cerebras"),
        ("gpt-j-6b", "eleutherai"),
        ("gpt-neox-20b", "eleutherai"),
        ("my-own-model", None),
        ("", None),
    ],
)
def test_it_reads_the_default_family_from_the_name(name: str, family: str | None) -> None:
    assert family_of(name) == family


def test_a_family_name_is_a_short_slug() -> None:
    assert family_clean("  LLaMA ") == "llama"
    with pytest.raises(ValueError, match="not a family name"):
        family_clean("open ai")


@pytest.fixture
def pairs(db: None) -> dict[str, Any]:
    """Two pairs llama-7b vs bloom-7b and a response of an unknown model; judged by a
    PandaLM judge (whose name holds "pandalm" but whose model id decides) and GPT-3.5."""
    prompt = PromptFactory(dataset=DatasetFactory(name="fam"))
    pair = PairFactory(
        prompt=prompt, response_a__model_name="llama-7b", response_b__model_name="bloom-7b"
    )
    other = PairFactory(
        prompt=prompt,
        response_a__model_name="house-model",
        response_b__model_name="llama-7b",
        response_b__text="x",
    )
    pandalm = JudgeFactory(name="pandalm-7b · pandalm", model_id="pandalm-7b")
    gpt = JudgeFactory(name="gpt-3.5-turbo · pandalm", model_id="gpt-3.5-turbo")
    for judge in (pandalm, gpt):
        VerdictFactory(judge=judge, pair=pair)
        VerdictFactory(judge=judge, pair=other)
    return {"dataset": pair.dataset, "pandalm": pandalm, "gpt": gpt}


def test_judges_take_their_model_ids_family(pairs: dict[str, Any]) -> None:
    families = selectors.judge_families([pairs["pandalm"], pairs["gpt"]])

    assert families[pairs["pandalm"].pk].family == "llama"
    assert families[pairs["gpt"].pk].family == "openai"  # not "llama" from "· pandalm"
    assert families[pairs["gpt"].pk].source == "default"


def test_the_page_lists_the_datasets_models_and_judges(
    pairs: dict[str, Any], lead_client: Client
) -> None:
    response = lead_client.get("/judges/datasets/fam/families/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "llama-7b" in html and "bloom-7b" in html and "house-model" in html
    assert "unknown: name one" in html  # the house model has no default
    assert "gpt-3.5-turbo · pandalm" in html
    assert (
        'href="/judges/datasets/fam/families/"'
        in lead_client.get("/datasets/fam/").content.decode()
    )


def test_a_lead_sets_and_clears_families_on_the_page(
    pairs: dict[str, Any], lead_client: Client, lead: Any
) -> None:
    response = lead_client.post(
        "/judges/datasets/fam/families/",
        {
            "model_name": ["bloom-7b", "house-model", "llama-7b"],
            "model_family": ["", "Llama", ""],
            "judge_id": [pairs["gpt"].pk, pairs["pandalm"].pk],
            "judge_family": ["", "mine"],
        },
    )

    assert response.status_code == 302
    assert ModelFamily.objects.get(model_name="house-model").family == "llama"
    assert ModelFamily.objects.get(model_name="house-model").updated_by == lead
    assert not ModelFamily.objects.filter(model_name="bloom-7b").exists()
    assert JudgeFamily.objects.get(judge=pairs["pandalm"]).family == "mine"

    lead_client.post(
        "/judges/datasets/fam/families/",
        {"model_name": ["house-model"], "model_family": [""]},
    )
    assert not ModelFamily.objects.exists()
    assert selectors.model_families(["house-model"])["house-model"].family is None


def test_a_bad_family_is_refused_with_its_place_and_nothing_is_written(
    pairs: dict[str, Any], lead_client: Client
) -> None:
    response = lead_client.post(
        "/judges/datasets/fam/families/",
        {
            "model_name": ["house-model", "bloom-7b"],
            "model_family": ["fine", "two words"],
        },
    )

    assert response.status_code == 400
    assert "models.bloom-7b" in response.content.decode()
    assert not ModelFamily.objects.exists()


def test_only_leads_see_or_change_families(
    pairs: dict[str, Any], annotator_client: Client, outsider_client: Client
) -> None:
    for client in (annotator_client, outsider_client):
        assert client.get("/judges/datasets/fam/families/").status_code == 403
        refused = client.post(
            "/judges/datasets/fam/families/",
            {"model_name": ["house-model"], "model_family": ["llama"]},
        )
        assert refused.status_code == 403
        api = client.patch(
            "/api/datasets/fam/families/",
            {"models": {"house-model": "llama"}},
            content_type="application/json",
        )
        assert api.status_code == 403
    assert not ModelFamily.objects.exists()


def test_the_api_reads_and_sets_families(pairs: dict[str, Any], lead_client: Client) -> None:
    before = lead_client.get("/api/datasets/fam/families/").json()
    changed = lead_client.patch(
        "/api/datasets/fam/families/",
        {"models": {"house-model": "llama"}, "judges": {str(pairs["gpt"].pk): "gpt"}},
        content_type="application/json",
    )
    bad = lead_client.patch(
        "/api/datasets/fam/families/",
        {"judges": {"999999": "llama"}},
        content_type="application/json",
    )

    models = {row["model"]: row for row in before["models"]}
    assert models["llama-7b"] == {
        "model": "llama-7b",
        "responses": 2,
        "family": "llama",
        "default": "llama",
        "source": "default",
    }
    assert models["house-model"]["family"] is None
    assert changed.status_code == 200
    after = {row["model"]: row for row in changed.json()["models"]}
    assert after["house-model"]["family"] == "llama"
    assert after["house-model"]["source"] == "lead"
    judges = {row["id"]: row for row in changed.json()["judges"]}
    assert judges[pairs["gpt"].pk]["family"] == "gpt"
    assert bad.status_code == 400
    assert "judges.999999" in bad.json()
