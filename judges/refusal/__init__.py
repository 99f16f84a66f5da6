"""Offline refusal classification of responses (pure code: no Django).

    from judges.refusal import load_default_classifier
    classifier = load_default_classifier()
    [c.label for c in classifier.classify(["Sorry, I can't help with that."])]

See docs/refusal-classifier.md for the classes, the model, the training data and the scores.
torch and transformers are imported only when a model is loaded.
"""

from __future__ import annotations

from judges.refusal.classifier import (
    Classification,
    ClassifierIdentity,
    ClassifierLoadError,
    DefaultRefusalClassifier,
    RefusalClassifier,
    TransformersRefusalClassifier,
    load_default_classifier,
    load_transformers_classifier,
)
from judges.refusal.csvfile import CsvClassificationReport, CsvInputError, classify_csv
from judges.refusal.embedder import EmbeddingModelError, MiniLMEmbedder, get_embedder
from judges.refusal.labels import CLASSES, DISCLAIMERS, REFUSALS

__all__ = [
    "CLASSES",
    "DISCLAIMERS",
    "REFUSALS",
    "Classification",
    "ClassifierIdentity",
    "ClassifierLoadError",
    "CsvClassificationReport",
    "CsvInputError",
    "DefaultRefusalClassifier",
    "EmbeddingModelError",
    "MiniLMEmbedder",
    "RefusalClassifier",
    "TransformersRefusalClassifier",
    "classify_csv",
    "get_embedder",
    "load_default_classifier",
    "load_transformers_classifier",
]
