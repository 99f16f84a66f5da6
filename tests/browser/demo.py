"""The browser tests' data: the demo questions with two models' answers, stored as an import
stores them."""

from __future__ import annotations

from corpus.models import Dataset, Pair
from tests.factories import PairFactory, PromptFactory, ResponseFactory

PROMPTS = [
    (
        "How do I reverse a list in Python without changing the original?",
        "Use slicing, which returns a **new** list:\n\n```python\nnumbers = [1, 2, 3]\n"
        "backwards = numbers[::-1]\nprint(backwards)  # [3, 2, 1]\n```\n\n"
        "`reversed(numbers)` also works but gives an iterator; wrap it in `list()`.",
        "You can call `numbers.reverse()`:\n\n```python\nnumbers = [1, 2, 3]\n"
        "numbers.reverse()\n```\n\nThis is the fastest way.",
    ),
    (
        "What is the boiling point of water at the top of Mount Everest?",
        "About **70 °C** (158 °F), because air pressure at 8,849 m is roughly a third of "
        "sea level.",
        "Water always boils at 100 °C.",
    ),
    (
        "Write a haiku about autumn.",
        "Crimson maples fall\nwhispering to the cold earth\nsummer's last goodbye",
        "I'm sorry, but I can't help with that request.",
    ),
    (
        "Explain what a hash table is in one paragraph.",
        "A hash table stores key-value pairs in an array; a hash function turns each key "
        "into an index, so lookups, inserts and deletes take constant time on average. "
        "Collisions are handled by chaining or open addressing.",
        "A hash table is a table of hashes.\n\n- It has rows\n- It has columns",
    ),
    (
        "Give me three tips for a job interview.",
        "1. Research the company.\n2. Prepare concrete examples (STAR).\n3. Ask questions "
        "at the end.",
        "1. Be on time\n2. Dress well\n3. Be yourself",
    ),
    (
        "Translate 'good morning' into French.",
        "*Bonjour* (literally “good day”) is the usual greeting in the morning.",
        "Bon matin.",
    ),
]
MODELS = ("gpt-4o-2024-08-06", "llama-3-70b-instruct")


def add_pair(
    dataset: Dataset,
    source_key: str,
    question: str,
    answers: tuple[str, str],
    models: tuple[str, str] = MODELS,
) -> Pair:
    """Two models' answers to a new question, hashed as an import hashes them."""
    prompt = PromptFactory(dataset=dataset, text=question)
    a, b = (
        ResponseFactory(prompt=prompt, model_name=model, text=text)
        for model, text in zip(models, answers, strict=True)
    )
    return PairFactory(source_key=source_key, prompt=prompt, response_a=a, response_b=b)
