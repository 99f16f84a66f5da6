"""Import speed: N generated Chatbot-Arena-shaped pairs through the same code path as
`manage.py import_pairs --format arena`, on the configured database engine.

    python bench/import_bench.py                     # SQLite (a temporary file)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tribunal python bench/import_bench.py

Never touches your data: on PostgreSQL it creates and drops a `tribunal_bench` database on the
same server, on SQLite it uses a temporary file. The pairs are seeded (the same file every
run), each response about 1 KB, one Arena vote per pair. Each size is imported in a fresh
process so that its peak memory is its own. Prints one line per size, e.g.
`import 50,000 arena pairs (postgresql): 12,345 pairs/s, peak 410 MB`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = (10_000, 50_000)
BENCH_DB = "tribunal_bench"
SEED = 20240601

MODELS = [
    "gpt-4-0613",
    "claude-2.1",
    "llama-2-70b-chat",
    "mixtral-8x7b-instruct-v0.1",
    "vicuna-33b",
    "gemini-pro",
    "mistral-medium",
    "gpt-3.5-turbo-0613",
]
# Generated text only has to be the right size and not compress to nothing.
WORDS = re.findall(
    r"\w+",
    """
the a model answer question because however therefore example code function value data
result first second step explain consider important note python list return user system
response option case error test number string table time which would should could people
world language write simple more most also only other
""",
)


def _text(rng: random.Random, chars: int) -> str:
    words = rng.choices(WORDS, k=chars // 6)
    return " ".join(words).capitalize() + "."


def generate(path: Path, n: int) -> None:
    """A Kaggle lmsys-arena-human-preference-55k-shaped CSV of n rows."""
    rng = random.Random(SEED + n)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(
            [
                "id",
                "model_a",
                "model_b",
                "prompt",
                "response_a",
                "response_b",
                "winner_model_a",
                "winner_model_b",
                "winner_tie",
            ]
        )
        for i in range(n):
            model_a, model_b = rng.sample(MODELS, 2)
            turns = 2 if rng.random() < 0.1 else 1
            per_turn = 1000 // turns
            prompt = [_text(rng, 120) + "?" for _ in range(turns)]
            side_a = [_text(rng, per_turn) for _ in range(turns)]
            side_b = [_text(rng, per_turn) for _ in range(turns)]
            winner = [0, 0, 0]
            winner[rng.randrange(3)] = 1
            out.writerow(
                [
                    30_000_000 + i,
                    model_a,
                    model_b,
                    json.dumps(prompt),
                    json.dumps(side_a),
                    json.dumps(side_b),
                    *winner,
                ]
            )


def child(n: int, csv_path: Path) -> None:
    """Runs in a fresh process with DATABASE_URL set to the throwaway database."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connection

    from corpus.importers.services import dataset_for_import, import_file

    dataset = dataset_for_import(name=f"bench-{n}")
    started = time.perf_counter()
    job = import_file(dataset=dataset, fmt="arena", path=csv_path)
    seconds = time.perf_counter() - started
    if job.status != "done" or job.counts.get("pairs_created") != n:
        print(f"import {n:,} arena pairs: FAILED {job.errors[:3]} {job.counts}", flush=True)
        sys.exit(1)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"import {n:,} arena pairs ({connection.vendor}): {n / seconds:,.0f} pairs/s, "
        f"peak {peak_mb:,.0f} MB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--child", nargs=2, metavar=("N", "CSV"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), Path(args.child[1]))
        return

    sys.path.insert(0, str(ROOT))
    from bench.benchdb import bench_database, postgres_url

    with (
        tempfile.TemporaryDirectory(prefix="tribunal-bench-") as tmp,
        bench_database(tmp, BENCH_DB, postgres=postgres_url()) as env,
    ):
        for n in args.sizes:
            csv_path = Path(tmp) / f"arena-{n}.csv"
            generate(csv_path, n)
            subprocess.run(
                [sys.executable, __file__, "--child", str(n), str(csv_path)],
                env=env,
                check=True,
            )


if __name__ == "__main__":
    main()
