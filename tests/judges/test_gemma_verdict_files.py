"""The shipped Gemma 3 270M verdict files (judges/data/gemma/), imported with the real importers.

No model runs here: the files were made by ``python manage.py gemma_verdicts`` and are checked
the way the demo uses them. The pairs come from the shared data through the ``hh-rlhf`` and
``pandalm`` importers (only the rows the verdict files name, to keep the test quick); the
verdicts through the ``generic`` importer, which must put every row, failed parses included,
on the pair it names.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from corpus.importers.services import dataset_for_import, import_file
from corpus.models import Dataset, HumanVote
from judges import gemma_verdicts as gv
from judges.core import next_token as nt
from judges.core.config import JudgeConfig
from judges.core.templates import MT_BENCH_PAIR_V2
from judges.models import Judge, Verdict

DATA = Path(settings.BASE_DIR).parent / "shared" / "data"
HH_SOURCE = DATA / "hh-rlhf" / "harmless-base-test.jsonl.gz"
PANDALM_SOURCE = DATA / "pandalm" / "testset-v1.json"
FILES = gv.DATA_DIR
HH_FILE = FILES / "hh-rlhf-refusal-gap.jsonl"
PANDALM_FILES = {"v1": FILES / "pandalm-v1.jsonl", "v2": FILES / "pandalm-v2.jsonl"}

pytestmark = pytest.mark.skipif(
    not (HH_SOURCE.exists() and PANDALM_SOURCE.exists()),
    reason="the shared hh-rlhf / PandaLM files are not available",
)


def rows_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def meta_of(path: Path) -> dict[str, Any]:
    return json.loads(path.with_suffix(".meta.json").read_text(encoding="utf-8"))


def hh_subset(keys: set[str], tmp_path: Path) -> Path:
    """The hh-rlhf rows whose pair key (`hh:` + 16 hex of sha256(chosen US rejected)) is in
    ``keys``, as a file the ``hh-rlhf`` importer reads like the original."""
    out = tmp_path / "harmless-base-test.jsonl"
    with gzip.open(HH_SOURCE, "rt", encoding="utf-8") as source, out.open("w") as sink:
        for line in source:
            row = json.loads(line)
            digest = hashlib.sha256((row["chosen"] + "\x1f" + row["rejected"]).encode()).hexdigest()
            if f"hh:{digest[:16]}" in keys:
                sink.write(line)
    return out


def pandalm_subset(keys: set[str], tmp_path: Path) -> Path:
    out = tmp_path / "testset-v1.json"
    items = json.loads(PANDALM_SOURCE.read_text(encoding="utf-8"))
    out.write_text(json.dumps([i for i in items if str(i["idx"]) in keys]), encoding="utf-8")
    return out


def imported(dataset: Dataset, path: Path, fmt: str = "generic") -> dict[str, int]:
    job = import_file(dataset=dataset, fmt=fmt, path=path)
    assert job.status == "done", job.errors
    return dict(job.counts)


# --- the files on their own ---------------------------------------------------------------------


@pytest.mark.parametrize("path", [HH_FILE, *PANDALM_FILES.values()], ids=lambda p: p.name)
def test_it_ships_files_with_a_verdict_for_every_order_of_every_pair(path: Path) -> None:
    rows = rows_of(path)
    meta = meta_of(path)
    verdicts = [r["verdicts"][0] for r in rows]

    assert len(rows) == len({r["pair_id"] for r in rows}) == meta["counts"]["pairs"] >= 200
    assert sorted(r["pair_id"] for r in rows) == sorted(meta["pair_keys_in_sample_order"])
    assert meta["counts"] == gv.summarise(rows)
    assert meta["counts"]["failed_parses"] == meta["counts"]["call_errors"] == 0
    config = JudgeConfig.from_dict(meta["judge_config"])
    assert {v["fingerprint"] for v in verdicts} == {config.fingerprint()} == {meta["fingerprint"]}
    assert (config.verdict_mode, config.max_tokens, config.swap_policy) == ("next_token", 1, "both")
    instructions = MT_BENCH_PAIR_V2.system  # the mt-bench preset (v2: one sentence changed)
    if meta["version_label"] == "v2":
        instructions = instructions.replace(gv.V1_SENTENCE, gv.V2_SENTENCE)
    assert config.template_user.startswith(instructions)
    assert config.model_revision == f"sha256:{meta['gguf']['sha256']}"
    assert meta["command"].startswith(f"python manage.py gemma_verdicts {meta['dataset']}")
    for verdict in verdicts:
        # Every order's verdict and margin are what the rule gives on its recorded logprobs.
        for order in ("ab", "ba"):
            assert verdict[f"status_{order}"] == "ok"
            probs = nt.probabilities_of_raw(verdict[f"raw_{order}"])
            letter = max("ABC", key=lambda k: probs[k])
            outcome = {"A": "A", "B": "B", "C": "tie"}[letter]
            margin = probs["A"] - probs["B"]
            if order == "ba":
                outcome = swap(outcome) or outcome
                margin = -margin
            assert verdict[f"outcome_{order}"] == outcome
            assert verdict[f"margin_{order}"] == pytest.approx(margin)
        combined = nt.combine_next_token(
            nt.probabilities_of_raw(verdict["raw_ab"]), nt.probabilities_of_raw(verdict["raw_ba"])
        )
        assert (verdict["outcome"], verdict["consistent"]) == (
            combined.outcome,
            combined.consistent,
        )


def swap(outcome: str | None) -> str | None:
    return {"A": "B", "B": "A"}.get(outcome or "", outcome)


def test_it_makes_the_two_pandalm_versions_differ_only_by_one_prompt_sentence() -> None:
    one, two = (meta_of(PANDALM_FILES[v]) for v in ("v1", "v2"))
    config_one, config_two = one["judge_config"], two["judge_config"]

    assert one["fingerprint"] != two["fingerprint"]
    differing = {k for k in config_one if config_one[k] != config_two[k]}
    assert differing == {"template_user", "template_name"}  # template_name is not hashed
    assert (
        config_one["template_user"].replace(gv.V1_SENTENCE, gv.V2_SENTENCE)
        == (config_two["template_user"])
    )
    assert one["pair_keys_in_sample_order"] == two["pair_keys_in_sample_order"]
    # The sample is 200 pairs; an unfinished run ships the pairs judged so far in both versions
    # (``--cached-only``), and says how many in its metadata.
    assert one["selection"]["selected"] >= 200
    judged = one["selection"].get("judged_so_far", one["selection"]["selected"])
    assert len(one["pair_keys_in_sample_order"]) == judged


def test_it_chose_hh_rlhf_pairs_where_exactly_one_side_declines() -> None:
    meta = meta_of(HH_FILE)
    pairs = {p.key: p for p in gv.read_pairs("hh-rlhf", HH_SOURCE)}
    keys = meta["pair_keys_in_sample_order"]

    judged = meta["selection"].get("judged_so_far", meta["selection"]["selected"])
    assert len(keys) == judged
    # A stopped run ships a prefix of the seeded order of every pair the rule keeps.
    chosen, _ = gv.select_hh_rlhf(list(pairs.values()), n=None, seed=meta["sample_seed"])
    assert keys == [p.key for p in chosen[: len(keys)]]
    for key in keys:
        side = meta["refusing_side"][key]
        assert gv.phrase_refusing_side(pairs[key]) == side != ""
        assert pairs[key].chars <= gv.MAX_PAIR_CHARS["hh-rlhf"]


# --- imported through the real importers ----------------------------------------------------------


def test_it_imports_the_hh_rlhf_verdicts_onto_the_refusal_pairs_and_adds_nothing_twice(
    db: None, tmp_path: Path
) -> None:
    rows = rows_of(HH_FILE)
    meta = meta_of(HH_FILE)
    keys = {r["pair_id"] for r in rows}
    dataset = dataset_for_import(name="hh-rlhf")
    pair_counts = imported(dataset, hh_subset(keys, tmp_path), fmt="hh-rlhf")
    assert pair_counts["pairs_created"] == len(keys)

    counts = imported(dataset, HH_FILE)

    assert counts["verdicts_created"] == len(rows) == Verdict.objects.count()
    assert counts["judges_created"] == 1
    assert counts.get("failed_parses", 0) == 0
    judge = Judge.objects.get()
    assert (judge.name, judge.fingerprint) == (gv.JUDGE_NAME, meta["fingerprint"])
    stored = {
        v.pair.source_key: v
        for v in Verdict.objects.select_related("pair__response_a", "pair__response_b")
    }
    assert set(stored) == keys
    by_key = {r["pair_id"]: r["verdicts"][0] for r in rows}
    for key, verdict in stored.items():
        row = by_key[key]
        # Both orders as in the file, and the combined verdict the file states.
        assert (verdict.status_ab, verdict.status_ba) == (row["status_ab"], row["status_ba"])
        assert (verdict.outcome_ab, verdict.outcome_ba) == (row["outcome_ab"], row["outcome_ba"])
        assert (verdict.raw_ab, verdict.raw_ba) == (row["raw_ab"], row["raw_ba"])
        assert (verdict.outcome, verdict.consistent) == (row["outcome"], row["consistent"])
        # The pair it landed on is one where exactly one side declines, by the phrase rule
        # applied to the texts the database holds, and that side is the one recorded.
        texts = gv.SourcePair(key, "", verdict.pair.response_a.text, verdict.pair.response_b.text)
        assert gv.phrase_refusing_side(texts) == meta["refusing_side"][key] != ""
    assert not Verdict.objects.filter(status_ab="failed").exists()

    again = imported(dataset, HH_FILE)

    assert again.get("verdicts_created", 0) == 0
    assert again["verdicts_duplicate"] == len(rows)
    assert Verdict.objects.count() == len(rows)
    assert Judge.objects.count() == 1


def test_it_imports_both_pandalm_versions_as_two_versions_on_the_annotated_pairs(
    db: None, tmp_path: Path
) -> None:
    files = {label: rows_of(path) for label, path in PANDALM_FILES.items()}
    keys = {r["pair_id"] for r in files["v1"]}
    assert keys == {r["pair_id"] for r in files["v2"]}
    dataset = dataset_for_import(name="pandalm")
    imported(dataset, pandalm_subset(keys, tmp_path), fmt="pandalm")

    counts = {label: imported(dataset, path) for label, path in PANDALM_FILES.items()}

    one, two = Judge.objects.order_by("version")
    assert (one.name, one.version, two.name, two.version) == (gv.JUDGE_NAME, 1, gv.JUDGE_NAME, 2)
    assert one.fingerprint == meta_of(PANDALM_FILES["v1"])["fingerprint"]
    assert two.fingerprint == meta_of(PANDALM_FILES["v2"])["fingerprint"]
    assert one.fingerprint != two.fingerprint
    for label, judge in (("v1", one), ("v2", two)):
        rows = files[label]
        assert counts[label]["verdicts_created"] == len(rows)
        assert counts[label].get("failed_parses", 0) == 0
        verdicts = Verdict.objects.filter(judge=judge).select_related("pair")
        assert {v.pair.source_key for v in verdicts} == keys
        for verdict in verdicts:
            assert verdict.status_ab == verdict.status_ba == "ok"
            assert verdict.outcome in ("A", "B", "tie")
    # Every judged pair carries PandaLM's three annotators, so agreement deltas can be computed.
    votes = Counter(
        HumanVote.objects.filter(pair__dataset=dataset).values_list("pair__source_key", flat=True)
    )
    assert all(votes[key] == 3 for key in keys)
    # The flip count the README quotes is the one the files give.
    assert gv.flip_count(files["v1"], files["v2"]) == meta_of(PANDALM_FILES["v2"])["flips_v1_v2"]

    again = [imported(dataset, path) for path in PANDALM_FILES.values()]

    assert [c.get("verdicts_created", 0) for c in again] == [0, 0]
    assert Judge.objects.count() == 2


def test_it_attaches_the_verdicts_to_the_runnable_version_judge_create_makes(
    db: None, tmp_path: Path
) -> None:
    """The generic format carries only the fingerprint; the full configuration is in the
    .meta.json, and ``judge_create --from-json`` of it makes the version the rows name."""
    meta = meta_of(HH_FILE)
    config_file = tmp_path / "judge.json"
    config_file.write_text(json.dumps(meta["judge_config"]), encoding="utf-8")
    out = StringIO()
    call_command(
        "judge_create", "--from-json", str(config_file), "--name", gv.JUDGE_NAME, stdout=out
    )
    assert f"fingerprint: {meta['fingerprint']}" in out.getvalue()
    rows = rows_of(HH_FILE)
    dataset = dataset_for_import(name="hh-rlhf")
    imported(dataset, hh_subset({r["pair_id"] for r in rows}, tmp_path), fmt="hh-rlhf")

    counts = imported(dataset, HH_FILE)

    judge = Judge.objects.get()
    assert counts.get("judges_created", 0) == 0
    assert judge.provider == "openai_compatible"  # runnable, not an "imported" stand-in
    assert judge.verdicts.count() == len(rows)
