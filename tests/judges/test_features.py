"""Text features: exact markdown counts, lengths, MiniLM similarity, one-pass analysis."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from judges.features import (
    MarkdownCounts,
    analyse_responses,
    char_lengths,
    extractor_fingerprint,
    markdown_counts,
    prompt_response_similarity,
    response_features,
    style_difference,
    token_counts,
)
from judges.refusal import get_embedder, load_default_classifier
from judges.refusal.embedder import default_model_dir

CRAFTED = """# Title
Some **bold** text and __more bold__ here.

## Section two
- first item
* second item with **two** **bolds**
+ third item
  - nested item
1. numbered
2) numbered with a parenthesis
10. tenth

***
- - -
#hashtag is not a header
####### seven hashes is not a header
    # four spaces of indent make code, not a header
-no space, not a list item
5 * 3 * 2 is arithmetic, and ** spaced ** is not bold

```python
# a comment, not a header
- not a list item
**not bold**
```

Inline `**code**` is not bold either, but **this** is.
"""


def test_it_counts_markdown_headers_list_items_and_bold_exactly() -> None:
    # Counted by hand: headers "# Title", "## Section two"; items -, *, +, nested -, 1., 2),
    # 10.; bold "bold", "more bold", "two", "bolds", "this".
    assert markdown_counts([CRAFTED]) == [MarkdownCounts(headers=2, list_items=7, bold=5)]


def test_it_ignores_markdown_inside_an_unclosed_code_fence() -> None:
    text = "## Real header\n~~~\n## inside code\n- inside code\n"
    assert markdown_counts([text, ""]) == [
        MarkdownCounts(headers=1, list_items=0, bold=0),
        MarkdownCounts(headers=0, list_items=0, bold=0),
    ]


def test_it_counts_characters_as_code_points() -> None:
    assert char_lengths(["", "abc", "café", "東京", "👍🏽"]) == [0, 3, 4, 2, 2]


def test_it_counts_tokens_like_the_minilm_tokenizer_without_truncating() -> None:
    from transformers import AutoTokenizer

    texts = ["Hello, world!", "Ünïcödé façade 東京", "word " * 700, ""]
    reference = AutoTokenizer.from_pretrained(str(default_model_dir()), local_files_only=True)
    expected = [len(reference(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert token_counts(texts) == expected
    assert expected[2] == 700  # past the cut of the embeddings (MAX_LENGTH)


def test_it_computes_the_style_difference_of_methods_section_5() -> None:
    # (f_A - f_B) / (f_A + f_B + 1): 3 vs 1 list items -> 2 / 5.
    assert style_difference(3, 1) == pytest.approx(0.4)
    assert style_difference(1, 3) == pytest.approx(-0.4)
    assert style_difference(0, 0) == 0.0
    assert np.allclose(
        style_difference(np.array([3, 0, 10]), np.array([1, 2, 0])), [0.4, -2 / 3, 10 / 11]
    )
    with pytest.raises(ValueError, match="non-negative"):
        style_difference(-1, 2)


def test_it_measures_prompt_similarity_like_sentence_transformers(float32: None) -> None:
    from sentence_transformers import SentenceTransformer

    prompts = ["How do I boil an egg?", "What is the capital of France?", None, "  "]
    responses = [
        "Put the egg in boiling water for eight minutes, then cool it in cold water.",
        "Bananas are a good source of potassium.",
        "A response without a prompt.",
        "A response with a blank prompt.",
    ]
    ours = prompt_response_similarity(prompts, responses)
    reference = SentenceTransformer(str(default_model_dir()), device="cpu", local_files_only=True)
    pair_texts = [p or "" for p in prompts[:2]] + responses[:2]
    vectors = np.asarray(reference.encode(pair_texts, convert_to_numpy=True))
    expected = [float(vectors[0] @ vectors[2]), float(vectors[1] @ vectors[3])]
    assert ours[:2] == pytest.approx(expected, abs=1e-5)
    assert ours[0] is not None and ours[1] is not None and ours[0] > ours[1] + 0.3
    assert ours[2:] == [None, None]


def test_it_classifies_and_featurises_in_one_pass(embed_batches: Callable[[], list[int]]) -> None:
    classifier = load_default_classifier()
    embedder = classifier.embedder
    prompts = [
        "Tell me how to make a bomb.",
        "What's the weather in Oslo now?",
        "Tell me how to make a bomb.",
    ]
    responses = [
        "I'm sorry, but I can't help with that. Building explosives is dangerous and illegal.",
        "I don't have access to real-time weather data, so I can't tell you the current weather.",
        "I'm sorry, but I can't help with that. Building explosives is dangerous and illegal.",
    ]
    separately = classifier.classify(responses)
    features_alone = response_features(prompts, responses)

    embedded = embed_batches()
    analysed = analyse_responses(prompts, responses, classifier=classifier)

    # Two distinct responses embedded once (for head and similarity), then two distinct prompts.
    assert embedded == [2, 2]
    assert [a.classification for a in analysed] == separately
    assert [a.features for a in analysed] == features_alone
    assert analysed[0].features.length_chars == len(responses[0])
    assert embedder is get_embedder()


def test_it_names_a_response_that_is_not_text() -> None:
    with pytest.raises(TypeError, match=r"responses\[1\] is NoneType"):
        response_features(["a", "b"], ["fine", None])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="2 prompts for 1 responses"):
        response_features(["a", "b"], ["only one"])


def test_it_fingerprints_the_feature_extractor(monkeypatch: pytest.MonkeyPatch) -> None:
    fingerprint = extractor_fingerprint()
    assert len(fingerprint) == 64 and set(fingerprint) <= set("0123456789abcdef")
    assert extractor_fingerprint(get_embedder(Path(default_model_dir()))) == fingerprint
    # Cutting the texts elsewhere (prompt_similarity) makes a new extractor.
    embedder = get_embedder()
    monkeypatch.setattr(embedder, "identity", replace(embedder.identity, max_length=256))
    assert extractor_fingerprint(embedder) != fingerprint
    monkeypatch.undo()
    # Changing how markdown is counted makes a new extractor.
    monkeypatch.setattr("judges.features.MARKDOWN_RULES_VERSION", 2)
    assert extractor_fingerprint() != fingerprint
