"""Local `transformers` judges loaded from directories these tests build (nothing downloaded).

The models are tiny and randomly initialised (one layer, 32 dimensions) with a word-level
tokenizer built offline with the `tokenizers` library: enough to exercise loading, scoring,
generation and storage exactly as a real checkpoint would go through them.
"""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from corpus.models import Dataset
from judges import services
from judges.core.templates import MT_BENCH_PAIR_V2
from judges.local_models import CausalLMJudge, model_dir_digest
from judges.models import Judge, JudgeRun, Verdict
from tests.factories import DatasetFactory
from tests.judges.conftest import PAIR_TEXTS, make_pairs

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[EOS]"]
WORDS = sorted(
    {
        word
        for text in [MT_BENCH_PAIR_V2.system, MT_BENCH_PAIR_V2.user, *sum(PAIR_TEXTS, ())]
        for word in text.split()
    }
    | {"[[A]]", "[[B]]", "[[C]]", "User:", "System:", "Assistant:"}
)


# torch and transformers are imported where used: several seconds that the test processes
# running none of these tests do not spend collecting them.


def save_tokenizer(directory: Path, *, chat_template: str | None = None) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate([*SPECIALS, *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        eos_token="[EOS]",
        model_input_names=["input_ids", "attention_mask"],
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(directory)


VOCAB_SIZE = len(SPECIALS) + len(WORDS)
IDS = {"pad_token_id": 0, "eos_token_id": 4, "bos_token_id": 4}


@pytest.fixture(scope="module")
def reward_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    directory = tmp_path_factory.mktemp("reward-model")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=512,
        num_labels=1,
        pad_token_id=0,
    )
    BertForSequenceClassification(config).save_pretrained(directory)
    save_tokenizer(directory)
    return directory


def save_gpt2(directory: Path, *, always: str | None = None) -> None:
    """A random one-layer GPT-2; with ``always``, rigged so every greedy step emits that token
    (all embeddings zero but its own, and a final layer norm that outputs that embedding)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=VOCAB_SIZE, n_embd=32, n_layer=1, n_head=2, n_positions=1024, **IDS
    )
    model = GPT2LMHeadModel(config)
    if always is not None:
        token_id = ([*SPECIALS, *WORDS]).index(always)
        with torch.no_grad():
            direction = torch.ones(32)
            model.transformer.wte.weight.zero_()
            model.transformer.wte.weight[token_id] = direction
            model.transformer.ln_f.weight.zero_()
            model.transformer.ln_f.bias.copy_(direction)
    model.save_pretrained(directory)


@pytest.fixture(scope="module")
def random_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("random-lm")
    save_gpt2(directory)
    save_tokenizer(directory)
    return directory


@pytest.fixture(scope="module")
def first_slot_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A causal LM that answers "[[A]]" whatever it is shown, with a chat template."""
    directory = tmp_path_factory.mktemp("always-a-lm")
    save_gpt2(directory, always="[[A]]")
    save_tokenizer(
        directory,
        chat_template=(
            "{% for m in messages %}{{ m['role'] | capitalize }}: {{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}Assistant:{% endif %}"
        ),
    )
    return directory


def judge_for(directory: Path, provider: str, **fields: Any) -> Judge:
    if provider == "transformers_causal":
        fields.setdefault("preset_id", "mt-bench")
    config = services.judge_config_build(provider=provider, model_id=str(directory), **fields)
    return services.judge_version_for(config, f"local-{provider}")


def run(judge: Judge, dataset: Dataset) -> JudgeRun:
    return services.judge_run_execute(services.judge_run_create(judge=judge, dataset=dataset).pk)


@pytest.fixture
def pairs(db: None) -> Dataset:
    ds = DatasetFactory(name="local")
    make_pairs(ds, PAIR_TEXTS)
    return ds


def reference_score(directory: Path, question: str, answer: str) -> float:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(directory, local_files_only=True)
    model.eval()
    with torch.no_grad():
        return float(model(**tokenizer(question, answer, return_tensors="pt")).logits[0, 0])


def test_it_judges_with_a_reward_model_whose_margin_is_the_score_difference(
    reward_dir: Path, pairs: Dataset
) -> None:
    judge = judge_for(reward_dir, "transformers_reward")

    finished = run(judge, pairs)

    assert finished.status == JudgeRun.Status.DONE, finished.error
    assert judge.model_revision == model_dir_digest(reward_dir)
    verdicts = Verdict.objects.filter(judge=judge).select_related(
        "pair__prompt", "pair__response_a", "pair__response_b"
    )
    assert verdicts.count() == len(PAIR_TEXTS)
    for verdict in verdicts:
        pair = verdict.pair
        score_a = reference_score(reward_dir, pair.prompt.text, pair.response_a.text)
        score_b = reference_score(reward_dir, pair.prompt.text, pair.response_b.text)
        assert verdict.margin == pytest.approx(score_a - score_b, abs=1e-5)
        assert verdict.margin_ab == pytest.approx(score_a - score_b, abs=1e-5)
        assert verdict.outcome == ("A" if score_a > score_b else "B")
        assert verdict.consistent is True  # each side is scored alone: order cannot matter
        assert (verdict.status_ab, verdict.status_ba) == ("ok", "ok")
    assert finished.counts["failed_parses"] == 0 and finished.counts["errors"] == 0


def test_it_calls_a_reward_margin_below_epsilon_a_tie(reward_dir: Path, pairs: Dataset) -> None:
    judge = judge_for(reward_dir, "transformers_reward", tie_epsilon=1e6)

    run(judge, pairs)

    assert judge.rubric == "tie_epsilon: 1e+06"
    assert set(Verdict.objects.filter(judge=judge).values_list("outcome", flat=True)) == {"tie"}
    assert all(m is not None for m in Verdict.objects.values_list("margin", flat=True))


def test_it_loads_a_random_causal_lm_and_stores_whatever_it_says(
    random_lm_dir: Path, pairs: Dataset
) -> None:
    judge = judge_for(random_lm_dir, "transformers_causal", max_tokens=6)

    finished = run(judge, pairs)

    assert finished.status == JudgeRun.Status.DONE, finished.error
    counts = finished.counts
    assert counts["calls"] == 2 * len(PAIR_TEXTS)
    assert counts["parsed"] + counts["failed_parses"] == 2 * len(PAIR_TEXTS)
    assert counts["errors"] == 0
    for verdict in Verdict.objects.filter(judge=judge):
        for order in ("ab", "ba"):
            status = getattr(verdict, f"status_{order}")
            assert status in ("ok", "failed")
            assert verdict.order_details[order]["usage"]["completion_tokens"] <= 6
            if status == "failed":
                assert getattr(verdict, f"outcome_{order}") is None


def test_it_reads_a_causal_lm_judges_answer_with_the_same_parser(
    first_slot_lm_dir: Path, pairs: Dataset
) -> None:
    judge = judge_for(first_slot_lm_dir, "transformers_causal", max_tokens=3, top_logprobs=2)

    finished = run(judge, pairs)

    assert finished.counts["parsed"] == 2 * len(PAIR_TEXTS)
    for verdict in Verdict.objects.filter(judge=judge):
        assert re.fullmatch(r"(\[\[A\]\] ?){3}", verdict.raw_ab)
        # It always takes the first slot: A in AB, the pair's B in BA, so a tie.
        assert (verdict.outcome_ab, verdict.outcome_ba, verdict.outcome) == ("A", "B", "tie")
        assert verdict.consistent is False
        margin = verdict.order_details["ab"]["margin"]
        assert margin["value"] is not None and margin["value"] > 0
        assert margin["exact"] is False  # B never made the top 2: a lower bound, said so


def test_it_uses_the_tokenizers_chat_template_for_the_prompt(first_slot_lm_dir: Path) -> None:
    config = services.judge_config_build(
        provider="transformers_causal", model_id=str(first_slot_lm_dir), preset_id="mt-bench"
    )
    adapter = CausalLMJudge.load(config)

    ids = adapter.prompt_ids(
        [{"role": "system", "content": "Please act as"}, {"role": "user", "content": "Hi"}]
    )

    text = adapter.tokenizer.decode(ids["input_ids"][0])
    assert text.startswith("System: Please act as")
    assert text.endswith("User: [UNK] Assistant:")  # "Hi" is not in the tiny vocabulary


def test_it_refuses_to_run_a_model_directory_that_changed_since_it_was_pinned(
    tmp_path: Path, pairs: Dataset
) -> None:
    directory = tmp_path / "lm"
    save_gpt2(directory)
    save_tokenizer(directory)
    judge = judge_for(directory, "transformers_causal", max_tokens=2)
    save_gpt2(directory, always="[[B]]")  # new weights in the same place

    finished = run(judge, pairs)

    assert finished.status == JudgeRun.Status.FAILED
    assert "files changed since this judge was pinned" in finished.error
    assert Verdict.objects.filter(judge=judge).count() == 0


def test_it_explains_a_directory_that_is_not_a_model(tmp_path: Path, db: None) -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        services.judge_config_build(
            provider="transformers_reward", model_id=str(tmp_path / "missing")
        )

    assert "not a model directory" in " ".join(caught.value.message_dict["model_id"])


def test_the_command_creates_a_reward_judge_pinned_to_its_files(reward_dir: Path, db: None) -> None:
    out = StringIO()

    call_command(
        "judge_create",
        "--provider",
        "transformers_reward",
        "--name",
        "rm",
        "--model-id",
        str(reward_dir),
        "--tie-epsilon",
        "0.25",
        stdout=out,
    )

    judge = Judge.objects.get(name="rm")
    assert f"fingerprint: {judge.fingerprint}" in out.getvalue()
    assert judge.model_revision == model_dir_digest(reward_dir)
    assert judge.rubric == "tie_epsilon: 0.25"
    assert judge.model_id == str(reward_dir.resolve())
