"""Import speed: N generated Chatbot-Arena-shaped pairs through the same code path as
`manage.py import_pairs --format arena`, on the configured database engine, and on
PostgreSQL a floor to hold it against.

    python bench/import_bench.py                     # SQLite (a temporary file)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/import_bench.py

Never touches your data: on PostgreSQL it creates and drops a database on the same server
(`tribunal_bench`, or $BENCH_DB: concurrent runs set one each) and, for the floor, a second
one named `<that>_floor`; on SQLite it uses a temporary file. The pairs are seeded (the same
file every run), each response about 1 KB, one Arena vote per pair. Each size is imported in
a fresh process so that its peak memory is its own. Prints one figure per line, e.g.

    import 50,000 arena pairs (postgresql): 12,345 pairs/s, peak 410 MB
    floor: COPY + INSERT ON CONFLICT, 50,000 pairs (postgresql): 15,000 pairs/s
    import/floor 50,000 pairs (postgresql): 0.82x
    floor without the search index, 50,000 pairs (postgresql): 40,000 pairs/s

The floor (PostgreSQL only) loads the same CSV the simplest fast way a DBA would, in one
transaction on its own freshly migrated database: COPY the file (csv, all columns as text)
into an UNLOGGED staging table; one `CREATE TEMP TABLE ... AS SELECT` that joins each side's
JSON turns as the importer does (`[Turn n]` headers for several) and hashes the texts with
the server's sha256(); then `INSERT ... SELECT ... ON CONFLICT DO NOTHING` into the app's own
migrated tables (prompts, responses, pairs, votes), finding ids by joins on their unique keys;
then COMMIT. It therefore does the same storage work as the import: the same rows and
content hashes (pair and vote hashes as `corpus.importers.records` makes them), the same
unique keys, indexes, deferred foreign-key checks and full-text search triggers, all of
which cost server time. It leaves out what only the importer does: checking each row with
line-numbered errors, refusing a pair key whose stored content differs, NUL and surrogate
repair, the ImportJob record and progress, the Python parsing and hashing themselves. Its
row counts are checked against the import's (a mismatch is printed); on a small file the
stored texts, content hashes and vote hashes were checked to be the same as the import's.
The last line loads the file once more with the search index's trigger disabled, to show
what share of both is the full-text indexing (`to_tsvector` of every pair's texts), which
the import cannot skip.
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
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = (10_000, 50_000)
BENCH_DB = os.environ.get("BENCH_DB", "tribunal_bench")  # concurrent runs: set one each
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


def child(n: int, csv_path: Path, result: Path) -> None:
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
    counts = {table: job.counts.get(f"{table}_created", 0) for table in FLOOR_COUNTS}
    result.write_text(json.dumps({"rate": n / seconds, "counts": counts}))


# The floor, step by step (see the module's docstring). %(dataset)s is the floor's dataset.
_SHA = "encode(sha256(convert_to({}, 'UTF8')), 'hex')"
_SEP = "E'\\x1f'"  # records._SEP
_PAIR_SHA = _SHA.format(
    f"concat_ws({_SEP}, r.p_sha, r.model_a, r.a_sha, r.model_b, r.b_sha, r.turn)"
)
_VOTE_SHA = _SHA.format(
    f"concat_ws({_SEP}, 'vote', r.key, 'arena_user', 'arena:' || r.key, r.outcome, '')"
)
FLOOR_SQL = [
    """
    CREATE UNLOGGED TABLE floor_stage (
        id text, model_a text, model_b text, prompt text, response_a text, response_b text,
        winner_model_a text, winner_model_b text, winner_tie text
    )
    """,
    "COPY",  # the file, streamed from the client
    # records.join_turns: one turn as it is, several under [Turn n] headers.
    r"""
    CREATE FUNCTION pg_temp.join_turns(turns jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
        SELECT CASE WHEN jsonb_array_length(turns) = 1 THEN coalesce(turns->>0, '')
        ELSE (SELECT string_agg('[Turn ' || n || E']\n' || coalesce(t, ''), E'\n\n' ORDER BY n)
              FROM jsonb_array_elements_text(turns) WITH ORDINALITY AS x(t, n)) END
    $$
    """,
    f"""
    CREATE TEMP TABLE floor_rows AS
    SELECT key, model_a, model_b, turn, prompt, a, b, outcome,
        {_SHA.format("prompt")} AS p_sha, {_SHA.format("a")} AS a_sha, {_SHA.format("b")} AS b_sha
    FROM (
        SELECT s.id AS key, s.model_a, s.model_b,
            jsonb_array_length(s.prompt::jsonb) AS turn,
            pg_temp.join_turns(s.prompt::jsonb) AS prompt,
            pg_temp.join_turns(s.response_a::jsonb) AS a,
            pg_temp.join_turns(s.response_b::jsonb) AS b,
            CASE WHEN s.winner_model_a = '1' THEN 'A' WHEN s.winner_model_b = '1' THEN 'B'
                ELSE 'tie' END AS outcome
        FROM floor_stage s
    ) parsed
    """,
    """
    INSERT INTO annotation_prompt (dataset_id, text, content_hash, source_key, category, meta)
    SELECT %(dataset)s, prompt, p_sha, key, '', '{}' FROM floor_rows
    ON CONFLICT (dataset_id, content_hash) DO NOTHING
    """,
    """
    INSERT INTO annotation_response (prompt_id, model_name, text, has_text, content_hash)
    SELECT p.id, side.model, side.text, true, side.sha
    FROM floor_rows r
    JOIN annotation_prompt p ON p.dataset_id = %(dataset)s AND p.content_hash = r.p_sha
    CROSS JOIN LATERAL (VALUES (r.model_a, r.a, r.a_sha), (r.model_b, r.b, r.b_sha))
        AS side (model, text, sha)
    ON CONFLICT (prompt_id, model_name, content_hash) DO NOTHING
    """,
    f"""
    INSERT INTO annotation_pair (dataset_id, source_key, prompt_id, response_a_id,
        response_b_id, turn, category, content_hash, meta)
    SELECT %(dataset)s, r.key, p.id, ra.id, rb.id, r.turn, '',
        {_PAIR_SHA}, '{{}}'
    FROM floor_rows r
    JOIN annotation_prompt p ON p.dataset_id = %(dataset)s AND p.content_hash = r.p_sha
    JOIN annotation_response ra
        ON ra.prompt_id = p.id AND ra.model_name = r.model_a AND ra.content_hash = r.a_sha
    JOIN annotation_response rb
        ON rb.prompt_id = p.id AND rb.model_name = r.model_b AND rb.content_hash = r.b_sha
    ON CONFLICT (dataset_id, source_key) DO NOTHING
    """,
    f"""
    INSERT INTO annotation_humanvote (pair_id, source, voter_id, outcome, strength, row_hash,
        import_job_id, created_at)
    SELECT pa.id, 'arena_user', 'arena:' || r.key, r.outcome, NULL,
        {_VOTE_SHA},
        NULL, now()
    FROM floor_rows r
    JOIN annotation_pair pa ON pa.dataset_id = %(dataset)s AND pa.source_key = r.key
    ON CONFLICT (pair_id, row_hash) DO NOTHING
    """,
]


def floor(n: int, csv_path: Path, url: str, *, search: bool = True) -> tuple[float, dict[str, int]]:
    """Load the file the DBA's way (see the module's docstring) into a database holding no
    pairs: pairs/s from the COPY to the COMMIT, and the rows stored per table. `search=False`
    disables the full-text index's trigger for the load (the tables are emptied afterwards)."""
    import psycopg

    with psycopg.connect(url) as conn:
        if not search:
            conn.execute(f"ALTER TABLE annotation_pair DISABLE TRIGGER {_SEARCH_TRIGGER}")
        dataset = conn.execute(
            "INSERT INTO annotation_dataset (name, description, created_at)"
            " VALUES (%s, '', now()) RETURNING id",
            [f"floor-{n}"],
        ).fetchone()[0]  # type: ignore[index]
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cursor:
            for sql in FLOOR_SQL:
                if sql == "COPY":
                    with (
                        open(csv_path, "rb") as handle,
                        cursor.copy(
                            "COPY floor_stage FROM STDIN (FORMAT csv, HEADER true)"
                        ) as copy,
                    ):
                        while block := handle.read(1 << 20):
                            copy.write(block)
                else:
                    cursor.execute(sql, {"dataset": dataset})
        conn.commit()
        seconds = time.perf_counter() - started
        counts = {
            table: conn.execute(sql, {"dataset": dataset}).fetchone()[0]  # type: ignore[index]
            for table, sql in FLOOR_COUNTS.items()
        }
        conn.execute("DROP TABLE floor_stage")
        conn.execute("TRUNCATE annotation_dataset CASCADE")  # the next load starts empty too
        conn.execute(f"ALTER TABLE annotation_pair ENABLE TRIGGER {_SEARCH_TRIGGER}")
        conn.commit()
    return n / seconds, counts


_SEARCH_TRIGGER = "corpus_pair_search_insert"  # migration corpus/0004_pair_search
FLOOR_COUNTS = {
    "prompts": "SELECT count(*) FROM annotation_prompt WHERE dataset_id = %(dataset)s",
    "responses": "SELECT count(*) FROM annotation_response r JOIN annotation_prompt p"
    " ON p.id = r.prompt_id WHERE p.dataset_id = %(dataset)s",
    "pairs": "SELECT count(*) FROM annotation_pair WHERE dataset_id = %(dataset)s",
    "votes": "SELECT count(*) FROM annotation_humanvote v JOIN annotation_pair p"
    " ON p.id = v.pair_id WHERE p.dataset_id = %(dataset)s",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--child", nargs=3, metavar=("N", "CSV", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), Path(args.child[1]), Path(args.child[2]))
        return

    sys.path.insert(0, str(ROOT))
    from bench.benchdb import bench_database, postgres_url

    postgres = postgres_url()
    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="tribunal-bench-"))
        env = stack.enter_context(bench_database(tmp, BENCH_DB, postgres=postgres))
        if postgres:
            floor_db = bench_database(tmp, f"{BENCH_DB}_floor", postgres=postgres)
            floor_url = stack.enter_context(floor_db)["DATABASE_URL"]
        for n in args.sizes:
            csv_path = Path(tmp) / f"arena-{n}.csv"
            result = Path(tmp) / f"result-{n}.json"
            generate(csv_path, n)
            subprocess.run(
                [sys.executable, __file__, "--child", str(n), str(csv_path), str(result)],
                env=env,
                check=True,
            )
            if not postgres:
                continue
            imported = json.loads(result.read_text())
            rate, counts = floor(n, csv_path, floor_url)
            print(
                f"floor: COPY + INSERT ON CONFLICT, {n:,} pairs (postgresql): {rate:,.0f} pairs/s"
            )
            print(f"import/floor {n:,} pairs (postgresql): {imported['rate'] / rate:.2f}x")
            if counts != imported["counts"]:
                print(f"  floor stored {counts}, the import {imported['counts']}: not comparable")
            rate, _ = floor(n, csv_path, floor_url, search=False)
            print(
                f"floor without the search index, {n:,} pairs (postgresql): {rate:,.0f} pairs/s",
                flush=True,
            )


if __name__ == "__main__":
    main()
