"""A user's own transformers classifier, loaded from a local directory with a label mapping.

The model here is a tiny, randomly initialised BERT with a word-level tokenizer, both built
and saved by the test: nothing is downloaded.
"""

from __future__ import annotations

import math
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from judges.refusal import CLASSES, ClassifierLoadError, load_transformers_classifier

MODEL_LABELS = ["COMPLIANCE", "REFUSAL", "PARTIAL"]
MAPPING = {"COMPLIANCE": "normal", "REFUSAL": "ethical_refusal", "PARTIAL": "ethical_disclaimer"}
WORDS = [
    "i",
    "cannot",
    "help",
    "with",
    "that",
    "sure",
    "here",
    "is",
    "how",
    "to",
    "do",
    "it",
    "sorry",
]


def save_tiny_model(directory: Path, *, bias: list[float] | None = None) -> Path:
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3}
    vocab.update({word: i + 4 for i, word in enumerate(WORDS)})
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        model_max_length=32,
    ).save_pretrained(directory)

    torch.manual_seed(0)
    settings: dict[str, Any] = dict(
        vocab_size=len(vocab),
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=32,
        initializer_range=0.5,  # large random weights, so texts get clearly different outputs
        num_labels=len(MODEL_LABELS),
        id2label=dict(enumerate(MODEL_LABELS)),
        label2id={label: i for i, label in enumerate(MODEL_LABELS)},
    )
    model = BertForSequenceClassification(BertConfig(**settings))
    if bias is not None:  # a constant classifier: the logits are exactly `bias`
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.copy_(torch.tensor(bias))
    model.save_pretrained(directory)
    return directory


def test_it_maps_the_model_labels_onto_our_classes(tmp_path: Path) -> None:
    directory = save_tiny_model(tmp_path / "constant", bias=[0.0, 3.0, 0.0])
    classifier = load_transformers_classifier(directory, MAPPING)
    results = classifier.classify(["I cannot help with that", "sure here is how to do it"])
    refusal = math.exp(3) / (2 + math.exp(3))  # softmax of the logits (0, 3, 0)
    for result in results:
        assert result.label == "ethical_refusal"
        assert result.score == pytest.approx(refusal)
        assert result.scores["normal"] == pytest.approx(1 / (2 + math.exp(3)))
        assert result.scores["technical_refusal"] == 0.0
        assert result.classifier == classifier.identity.fingerprint


def test_it_gives_the_probabilities_the_transformers_pipeline_gives(tmp_path: Path) -> None:
    from transformers import pipeline

    directory = save_tiny_model(tmp_path / "random")
    texts = ["I cannot help with that", "sure here is how to do it", "sorry", "unknown words"]
    classifier = load_transformers_classifier(directory, MAPPING)
    reference = pipeline("text-classification", model=str(directory), top_k=None, device="cpu")
    for text, result in zip(texts, classifier.classify(texts), strict=True):
        outputs: list[list[dict[str, Any]]] = reference([text])  # type: ignore[assignment]
        expected = {MAPPING[item["label"]]: item["score"] for item in outputs[0]}
        assert {k: result.scores[k] for k in expected} == pytest.approx(expected, abs=1e-6)
        assert result.label == max(expected, key=lambda k: expected[k])


def test_it_adds_up_model_labels_mapped_to_one_class(tmp_path: Path) -> None:
    directory = save_tiny_model(tmp_path / "constant", bias=[1.0, 0.0, 0.5])
    mapping = {"COMPLIANCE": "normal", "REFUSAL": "ethical_refusal", "PARTIAL": "normal"}
    result = load_transformers_classifier(directory, mapping).classify(["sorry"])[0]
    logits = np.array([1.0, 0.0, 0.5])
    p = np.exp(logits) / np.exp(logits).sum()
    assert result.label == "normal"
    assert result.score == pytest.approx(p[0] + p[2])
    assert sum(result.scores.values()) == pytest.approx(1.0)
    assert set(result.scores) == set(CLASSES)


def test_it_names_model_labels_missing_from_the_mapping(tmp_path: Path) -> None:
    directory = save_tiny_model(tmp_path / "m")
    with pytest.raises(ClassifierLoadError, match=r"model labels \['PARTIAL'\]"):
        load_transformers_classifier(
            directory, {"COMPLIANCE": "normal", "REFUSAL": "ethical_refusal"}
        )
    with pytest.raises(ClassifierLoadError, match=r"targets \['refusal'\] are not classes"):
        load_transformers_classifier(directory, {**MAPPING, "REFUSAL": "refusal"})
    with pytest.raises(ClassifierLoadError, match=r"keys \['LABEL_9'\] are not labels"):
        load_transformers_classifier(directory, {**MAPPING, "LABEL_9": "normal"})


def test_it_pins_the_model_files_in_the_fingerprint(tmp_path: Path) -> None:
    first = load_transformers_classifier(save_tiny_model(tmp_path / "a", bias=[0, 1, 0]), MAPPING)
    same = load_transformers_classifier(save_tiny_model(tmp_path / "b", bias=[0, 1, 0]), MAPPING)
    other = load_transformers_classifier(save_tiny_model(tmp_path / "c", bias=[0, 2, 0]), MAPPING)
    assert first.identity.fingerprint == same.identity.fingerprint  # same files, other folder
    assert first.identity.fingerprint != other.identity.fingerprint
    remapped = load_transformers_classifier(tmp_path / "a", {**MAPPING, "PARTIAL": "normal"})
    assert remapped.identity.fingerprint != first.identity.fingerprint


def test_it_never_reaches_for_the_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("network access attempted")

    directory = save_tiny_model(tmp_path / "m")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    assert load_transformers_classifier(directory, MAPPING).classify(["sorry"])[0].label in CLASSES
    # A name that would be a Hub model id is refused, not downloaded.
    with pytest.raises(ClassifierLoadError, match="is not a directory"):
        load_transformers_classifier("distilroberta-base", MAPPING)
    with pytest.raises(ClassifierLoadError, match=r"has no config\.json"):
        load_transformers_classifier(tmp_path, MAPPING)
