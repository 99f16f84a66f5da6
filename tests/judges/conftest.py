"""Fixtures for the Django side of judges: a dataset of pairs and judges on a local server."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from django.core.exceptions import ValidationError

from corpus.models import Dataset, Pair
from judges import services
from judges.models import Judge, JudgeRun
from judges.refusal import DefaultRefusalClassifier, MiniLMEmbedder, load_default_classifier
from tests.factories import DatasetFactory, PairFactory, PromptFactory, ResponseFactory
from tests.judges.chat_server import ChatServer, RecordedRequest, Reply, chat_server

__all__ = ["chat_server"]  # the fixture, shared by every test in this folder

SLOT = re.compile(r"\[The Start of Assistant (A|B)'s Answer\]\n(.*?)\n\[The End", re.S)


def shown(request: RecordedRequest) -> dict[str, str]:
    """The answers in the judge's slots A and B, read back from the prompt it received."""
    return dict(SLOT.findall(request.user_message))


def picky_judge(request: RecordedRequest) -> Reply:
    """Prefers the answer containing "correct"; takes the first slot when it cannot tell;
    rambles without a verdict when an answer says "ramble"; crashes on "boom"."""
    slots = shown(request)
    if any("boom" in text for text in slots.values()):
        # Retry-After 0: the client retries at once, so the test does not sit in backoff.
        return Reply(
            status=500, headers={"Retry-After": "0"}, body='{"error": {"message": "crashed"}}'
        )
    if any("ramble" in text for text in slots.values()):
        return Reply(content="Both answers have merit, and it is hard to say.")
    good = [slot for slot, text in slots.items() if "correct" in text]
    verdict = good[0] if len(good) == 1 else "A"
    return Reply(content=f"Explanation.\n\nMy final verdict: [[{verdict}]]")


# (question, answer A, answer B): what the picky judge makes of each, in both orders
PAIR_TEXTS = [
    ("What is 2+2?", "4, which is correct", "5"),  # A in both orders
    ("Capital of Peru?", "Quito", "Lima is correct"),  # B in both orders
    ("Say hi", "hi", "hello"),  # first slot both times: inconsistent, a tie
    ("Explain tides", "ramble on", "The moon pulls the sea."),  # no verdict: failed parses
]


def make_pairs(dataset: Dataset, texts: list[tuple[str, str, str]]) -> list[Pair]:
    pairs = []
    for i, (question, answer_a, answer_b) in enumerate(texts):
        prompt = PromptFactory(dataset=dataset, text=question)
        pairs.append(
            PairFactory(
                prompt=prompt,
                dataset=dataset,
                source_key=f"{dataset.name}-{i}",
                response_a=ResponseFactory(prompt=prompt, text=answer_a, model_name="model-x"),
                response_b=ResponseFactory(prompt=prompt, text=answer_b, model_name="model-y"),
            )
        )
    return pairs


@pytest.fixture
def dataset(db: None) -> Dataset:
    ds = DatasetFactory(name="judge-test")
    make_pairs(ds, PAIR_TEXTS)
    return ds


@pytest.fixture
def make_judge(db: None) -> Callable[..., Judge]:
    """A judge version on a server: ``make_judge(server, name=..., **config fields)``."""

    def make(server: ChatServer, name: str = "picky", **fields: Any) -> Judge:
        fields.setdefault("preset_id", "mt-bench")
        fields.setdefault("model_id", "picky-1")
        fields.setdefault("seed", 7)
        fields.setdefault("max_retries", 2)
        fields.setdefault("timeout_s", 10.0)
        config = services.judge_config_build(base_url=server.base_url, **fields)
        return services.judge_version_for(config, name)

    return make


def assert_blocked_by(run: JudgeRun) -> None:
    """A second run of the judge on the same data is refused while ``run`` holds it."""
    with pytest.raises(ValidationError, match=rf"already running on this data \(run {run.pk}\)"):
        services.judge_run_create(judge=run.judge, dataset=run.dataset)


@pytest.fixture
def picky_server(chat_server: ChatServer) -> ChatServer:
    """The local server answering as `picky_judge`."""
    chat_server.responder = picky_judge
    return chat_server


@pytest.fixture
def judge(picky_server: ChatServer, make_judge: Callable[..., Judge]) -> Judge:
    """A judge version on the picky server, in make_judge's default config."""
    return make_judge(picky_server)


@pytest.fixture
def float32(monkeypatch: pytest.MonkeyPatch) -> None:
    """Embed in float32, the precision that equals sentence-transformers to 1e-5 (the default,
    pinned here against a TRIBUNAL_EMBEDDING_PRECISION in the environment)."""
    monkeypatch.setenv("TRIBUNAL_EMBEDDING_PRECISION", "float32")


@pytest.fixture(scope="module")
def classifier() -> DefaultRefusalClassifier:
    """The shipped refusal classifier, loaded once per test module."""
    return load_default_classifier()


@pytest.fixture
def embed_batches(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[int]]:
    """``sizes = embed_batches()`` starts recording how many token lists each
    `MiniLMEmbedder.embed_ids` call embeds (from that point on, not before)."""

    def start() -> list[int]:
        sizes: list[int] = []
        original = MiniLMEmbedder.embed_ids

        def counting(self: MiniLMEmbedder, ids: list[list[int]], **kwargs: int) -> np.ndarray:
            sizes.append(len(ids))
            return original(self, ids, **kwargs)

        monkeypatch.setattr(MiniLMEmbedder, "embed_ids", counting)
        return sizes

    return start
