"""Judge verdicts that arrive in imported files (MT-Bench's GPT-4 judgments, a PandaLM judge
file, the generic format's verdict columns), written with the file's pairs and votes.

The import writer lives in the corpus app, which comes first in the flow and imports no
other app; this part reads the rows' verdicts for it. `JudgesConfig.ready` registers it
(`corpus.importers.writer.row_part_register`), and every PairWriter then makes one.
A verdict names its judge by fingerprint: a new fingerprint becomes an imported judge version.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Max

from corpus.importers.records import (
    JudgeRef,
    Row,
    RowError,
    VerdictRecord,
    clean_json,
    clean_text,
)
from corpus.importers.writer import PairWriter, lookup_batches
from judges.models import Judge, Verdict

_VERDICT = (
    "id",
    "judge",
    "pair",
    "outcome",
    "consistent",
    "strength",
    "margin",
    "outcome_ab",
    "outcome_ba",
    "status_ab",
    "status_ba",
    "margin_ab",
    "margin_ba",
    "raw_ab",
    "raw_ba",
    "criteria_ab",
    "criteria_ba",
    "row_hash",
)


class VerdictPart:
    """The verdicts of one import (one file), decided per chunk and written after its pairs."""

    def __init__(self, writer: PairWriter) -> None:
        self.writer = writer
        self.judge_ids: dict[str, int] = {}  # fingerprint -> Judge id
        self.seen: dict[tuple[str, str], tuple[str, int]] = {}  # (fingerprint, key) -> (hash, line)
        self.new: list[tuple[Row, int]] = []  # (row, index of the verdict) to write

    def decide(self, rows: list[Row]) -> list[RowError]:
        """Find the chunk's new verdicts (kept for `write`). A judge gives one verdict per
        pair: the same one again is a duplicate, a different one an error."""
        writer = self.writer
        errors: list[RowError] = []
        stored: dict[tuple[str, str], str] = {}
        before = [
            (r, v)
            for r in rows
            for v in r.verdicts
            if not writer.fresh and writer.pairs[r.key].before
        ]
        if before:
            judge_ids = {self._judge_id(v.judge, v) for _, v in before}
            by_id = {writer.pairs[r.key].id: r.key for r, _ in before}
            fingerprints = dict(
                Judge.objects.filter(id__in=judge_ids).values_list("id", "fingerprint")
            )
            for batch in lookup_batches(list(by_id)):
                found = Verdict.objects.filter(judge_id__in=judge_ids, pair_id__in=batch)
                for judge_id, pair_id, digest in found.values_list(
                    "judge_id", "pair_id", "row_hash"
                ):
                    stored[(fingerprints[judge_id], by_id[pair_id])] = digest
        new = []
        for row in rows:
            for i, verdict in enumerate(row.verdicts):
                digest = row.verdict_shas[i]
                writer.counts["failed_parses"] += verdict.failed_parses
                slot = (verdict.judge.fingerprint, row.key)
                earlier = self.seen.get(slot)
                if earlier is None and slot in stored:
                    earlier = (stored[slot], 0)
                if earlier is None:
                    self.seen[slot] = (digest, row.line)
                    new.append((row, i))
                elif earlier[0] == digest:
                    writer.counts["verdicts_duplicate"] += 1
                else:
                    where = f"line {earlier[1]}" if earlier[1] else "imported before"
                    errors.append(
                        writer.error(
                            row,
                            verdict.field or "judge",
                            f"a different verdict by {verdict.judge.name!r} on pair {row.key!r} "
                            f"is already there ({where}); a judge gives one verdict per pair",
                        )
                    )
        self.new = new
        return errors

    def write(self) -> None:
        """Write the verdicts the last `decide` found new (the pairs exist by now)."""
        writer, new = self.writer, self.new
        ids = writer.table.allocate(Verdict, len(new))
        values = []
        for pk, (row, i) in zip(ids, new, strict=True):
            verdict = row.verdicts[i]
            outcome, consistent = verdict.combine()
            values.append(
                (
                    pk,
                    self._judge_id(verdict.judge, verdict),
                    writer.pairs[row.key].id,
                    outcome,
                    consistent,
                    verdict.strength,
                    verdict.margin,
                    verdict.outcome_ab,
                    verdict.outcome_ba,
                    verdict.status_ab,
                    verdict.status_ba,
                    verdict.margin_ab,
                    verdict.margin_ba,
                    clean_text(verdict.raw_ab)[0],
                    clean_text(verdict.raw_ba)[0],
                    clean_json(verdict.criteria_ab),
                    clean_json(verdict.criteria_ba),
                    row.verdict_shas[i],
                )
            )
        writer.table.insert(Verdict, _VERDICT, values)
        writer.counts["verdicts_created"] += len(values)
        self.new = []

    def _judge_id(self, ref: JudgeRef, verdict: VerdictRecord) -> int:
        fingerprint = ref.fingerprint
        judge_id = self.judge_ids.get(fingerprint)
        if judge_id is not None:
            return judge_id
        # The judge may be created under a savepoint: no COPY may run inside it.
        self.writer.table.sync()
        judge_id = (
            Judge.objects.filter(fingerprint=fingerprint).values_list("id", flat=True).first()
        )
        if judge_id is None:
            judge_id = self._create_judge(ref, verdict)
        self.judge_ids[fingerprint] = judge_id
        return judge_id

    def _create_judge(self, ref: JudgeRef, verdict: VerdictRecord) -> int:
        """An imported judge; a new fingerprint under a known name is that name's next version."""
        config = {"provider": "imported", "model_id": ref.model_id, "source": ref.source}
        if ref.template:
            config["template"] = ref.template
        for _attempt in range(3):
            latest = Judge.objects.filter(name=ref.name).aggregate(v=Max("version"))["v"] or 0
            try:
                with transaction.atomic():
                    judge = Judge.objects.create(
                        name=ref.name,
                        version=latest + 1,
                        provider=Judge.Provider.IMPORTED,
                        model_id=ref.model_id,
                        template_name=ref.template[:100],
                        swap_policy=(
                            Judge.SwapPolicy.AB_ONLY
                            if verdict.status_ba == "not_run"
                            else Judge.SwapPolicy.BOTH
                        ),
                        config=config,
                        fingerprint=ref.fingerprint,
                    )
                self.writer.counts["judges_created"] += 1
                return judge.pk
            except IntegrityError:  # another import created it (or the version) meanwhile
                found = Judge.objects.filter(fingerprint=ref.fingerprint).values_list(
                    "id", flat=True
                )
                if found:
                    return found[0]
        raise IntegrityError(f"could not create judge {ref.name!r}")
