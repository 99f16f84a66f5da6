"""Small input and output serializers of the datasets API. No logic: selectors read."""

from __future__ import annotations

from rest_framework import serializers

from corpus.models import Pair


class CategoryCountOutput(serializers.Serializer):
    category = serializers.CharField()
    pairs = serializers.IntegerField()


class ModelCountOutput(serializers.Serializer):
    model = serializers.CharField()
    responses = serializers.IntegerField()


class PairFilterInput(serializers.Serializer):
    category = serializers.CharField(
        max_length=100, required=False, allow_blank=True, help_text="exact category"
    )
    model = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="pairs where either response is by this model",
    )


class PairResponseOutput(serializers.Serializer):
    model = serializers.CharField(source="model_name")
    text = serializers.CharField()
    has_text = serializers.BooleanField()


class PairOutput(serializers.Serializer):
    """A pair as a lead sees it, model names included (never served to annotators)."""

    id = serializers.IntegerField()
    key = serializers.CharField(source="source_key")
    prompt = serializers.CharField(source="prompt.text")
    category = serializers.SerializerMethodField()
    turn = serializers.IntegerField()
    response_a = PairResponseOutput()
    response_b = PairResponseOutput()

    def get_category(self, pair: Pair) -> str:
        return pair.category or pair.prompt.category
