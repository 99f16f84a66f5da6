"""Refusal classification + text features on CPU: responses per second on real texts.

    python bench/features_bench.py [--data-dir ../shared/data] [--threads N] [--compare-head F]

Runs `judges.features.analyse_responses` (MiniLM embedding of each response and prompt,
refusal class, lengths, markdown counts, prompt similarity) on real responses of three
lengths, each in a fresh process so that its peak memory is its own:

- hh-rlhf: the last assistant turn of 1,000 `chosen` dialogues (short), the last human turn
  as the prompt;
- hh-rlhf dialogues: the same data as the demo imports it (the hh-rlhf importer's
  `split_dialogues`): the final turns of `chosen` and `rejected` as two responses and the
  whole dialogue before them as their prompt, 1,000 responses (500 pairs), so the prompts
  are long;
- PandaLM: 1,000 responses of the test set (medium);
- XSTest: the 900 GPT-4 and Llama-2 completions (chat-assistant length).

Identical texts are embedded once (PandaLM repeats responses and instructions across its
model pairs, so it runs fastest); the distinct counts are printed. The model is loaded and
warmed up on three texts before the clock starts; the load time is printed on its own line.
Prints one figure per line, e.g. `classify+features 1,000 hh-rlhf responses (992 distinct,
986 distinct prompts, mean 39 tokens, prompts 18 as embedded, 2 workers, bfloat16): 313
responses/s (6 CPU-ms per response), peak 750 MB` (response length in tokens uncut, prompt
length as embedded, at most 256). CPU milliseconds per response (all threads) are printed
next to the wall-clock rate, and the machine's load average around the runs: on a shared
machine the wall-clock rate falls with other work, the CPU time much less.

A second line per data set gives what the refusal classifier adds on top of the embedding:
its lexical cues and head alone, in CPU-ms per response, for the shipped head and (with
`--compare-head FILE`) another head over the same embeddings: one trained on texts cut as
today's embedder cuts them (the first heads of 4cf34e6 and every head before the 96-token cut
were trained at 256 tokens, and are refused). The floor is the goal of 100 responses/s on 2
cores.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from judges.refusal import DefaultRefusalClassifier

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT.parent / "shared" / "data"
SETS = ("hh-rlhf", "hh-rlhf dialogues", "PandaLM", "XSTest")
SIZE = 1_000
FLOOR = 100  # responses/s on 2 cores: the goal


def load_set(name: str, data_dir: Path) -> tuple[list[str | None], list[str]]:
    """(prompts, responses) of one data set, as real files hold them."""
    prompts: list[str | None] = []
    responses: list[str] = []
    if name == "hh-rlhf":
        with gzip.open(data_dir / "hh-rlhf" / "harmless-base-test.jsonl.gz", "rt") as stream:
            for line in stream:
                dialogue = json.loads(line)["chosen"]
                before, _, answer = dialogue.rpartition("\n\nAssistant:")
                prompts.append(before.rpartition("\n\nHuman:")[2].strip())
                responses.append(answer.strip())
    elif name == "hh-rlhf dialogues":
        from corpus.importers.formats.hh_rlhf import split_dialogues

        with gzip.open(data_dir / "hh-rlhf" / "harmless-base-test.jsonl.gz", "rt") as stream:
            for line in stream:
                record = json.loads(line)
                split = split_dialogues(record["chosen"], record["rejected"])
                if split is not None:
                    prompts += [split[0], split[0]]
                    responses += [split[1], split[2]]
    elif name == "PandaLM":
        items = json.loads((data_dir / "pandalm" / "testset-v1.json").read_text())
        for item in items:
            prompt = f"{item['instruction']}\n{item['input']}".strip()
            for key in ("response1", "response2"):
                prompts.append(prompt)
                responses.append(str(item[key]))  # a few responses are JSON booleans
    elif name == "XSTest":
        for model in ("gpt4", "llama2orig"):
            path = data_dir / "xstest" / f"xstest_v2_completions_{model}.csv"
            with path.open(newline="", encoding="utf-8") as stream:
                for row in csv.DictReader(stream):
                    prompts.append(row["prompt"])
                    responses.append(row["completion"])
    return prompts[:SIZE], responses[:SIZE]


def head_cost(classifier: DefaultRefusalClassifier, texts: list[str], vectors: np.ndarray) -> float:
    """CPU-ms per response of the cues and the head alone (best of three)."""
    times = []
    for _ in range(3):
        started = time.process_time()
        classifier.classify_embedded(texts, vectors)
        times.append(time.process_time() - started)
    return 1000 * min(times) / len(texts)


def run_one(name: str, data_dir: Path, first: bool, compare_head: Path | None) -> None:
    from judges.features import analyse_responses
    from judges.refusal import load_default_classifier

    prompts, responses = load_set(name, data_dir)
    started = time.perf_counter()
    classifier = load_default_classifier()
    analyse_responses(prompts[:3], responses[:3], classifier=classifier)  # warm-up
    loaded = time.perf_counter() - started
    tokens = classifier.embedder.tokens.count(responses)
    mean_tokens = sum(int(t) for t in tokens) / len(tokens)
    distinct_prompts = list(dict.fromkeys(p for p in prompts if p))
    prompt_ids = classifier.embedder.tokens.encode(distinct_prompts).model_ids
    prompt_tokens = sum(len(ids) for ids in prompt_ids) / max(1, len(prompt_ids))

    started, cpu_started = time.perf_counter(), time.process_time()
    analysed = analyse_responses(prompts, responses, classifier=classifier)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    assert len(analysed) == len(responses)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if first:
        print(f"load MiniLM + refusal head + warm-up: {loaded:.1f} s", flush=True)
    print(
        f"classify+features {len(responses):,} {name} responses ({len(set(responses)):,} distinct, "
        f"{len(set(prompts)):,} distinct prompts, mean {mean_tokens:.0f} tokens, prompts "
        f"{prompt_tokens:.0f} as embedded, {classifier.embedder.threads} workers, "
        f"{classifier.embedder.precision}): "
        f"{len(responses) / elapsed:,.0f} "
        f"responses/s ({1000 * cpu / len(responses):.0f} CPU-ms per response), "
        f"peak {peak_mb:,.0f} MB (floor {FLOOR} responses/s)",
        flush=True,
    )
    vectors = classifier.embedder.embed(responses)
    costs = [f"shipped head {head_cost(classifier, responses, vectors):.2f}"]
    if compare_head is not None:
        other = load_default_classifier(head_path=compare_head)
        costs.append(f"{compare_head.name} {head_cost(other, responses, vectors):.2f}")
    print(
        f"  of which refusal cues + head, {name}: " + ", ".join(costs) + " CPU-ms per response",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--threads", type=int, default=None, help="workers (default: all CPUs)")
    parser.add_argument("--compare-head", type=Path, default=None, help="time another head too")
    parser.add_argument("--one", choices=SETS, help=argparse.SUPPRESS)
    parser.add_argument("--first", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads is not None:
        os.environ["TRIBUNAL_TORCH_THREADS"] = str(args.threads)
    if args.one:
        run_one(args.one, args.data_dir, args.first, args.compare_head)
        return 0
    before = os.getloadavg()[0]
    for index, name in enumerate(SETS):
        command = [sys.executable, __file__, "--one", name, "--data-dir", str(args.data_dir)]
        if index == 0:
            command.append("--first")
        if args.compare_head is not None:
            command += ["--compare-head", str(args.compare_head.resolve())]
        subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    after = os.getloadavg()[0]
    cpus = os.cpu_count()
    print(f"machine load average (1 min) before / after: {before:.1f} / {after:.1f} on {cpus} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
