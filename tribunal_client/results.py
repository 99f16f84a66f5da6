"""Typed results of the client's calls: frozen dataclasses read from the API's JSON.

Each keeps the fields a pipeline acts on; ``raw`` (where present) is the whole JSON body, for
everything else the server sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

GateStatus = Literal["PASS", "FAIL", "INCONCLUSIVE"]
FINISHED_IMPORTS = ("done", "failed")


@dataclass(frozen=True)
class ImportJob:
    """One file's import: ``status`` is pending, running, done or failed."""

    id: int
    dataset: str
    format: str
    filename: str
    status: str
    counts: dict[str, Any]
    errors: list[str]
    rows_done: int
    rows_total: int

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_IMPORTS

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImportJob:
        return cls(
            id=int(data["id"]),
            dataset=str(data["dataset"]),
            format=str(data["format"]),
            filename=str(data["filename"]),
            status=str(data["status"]),
            counts=dict(data.get("counts") or {}),
            errors=[str(e) for e in data.get("errors") or []],
            rows_done=int(data.get("rows_done") or 0),
            rows_total=int(data.get("rows_total") or 0),
        )


@dataclass(frozen=True)
class Judge:
    """A judge version with verdicts on a dataset."""

    id: int
    name: str
    version: int
    fingerprint: str
    verdicts: int

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Judge:
        return cls(
            id=int(data["id"]),
            name=str(data["name"]),
            version=int(data["version"]),
            fingerprint=str(data.get("fingerprint") or ""),
            verdicts=int(data.get("verdicts") or 0),
        )


@dataclass(frozen=True)
class Progress:
    items: int
    labels_done: int
    labels_needed: int
    items_complete: int


@dataclass(frozen=True)
class Audit:
    """An audit with its progress; ``judges`` are ids (None when the token is not a lead's)."""

    id: int
    name: str
    dataset: str
    status: str
    judges: tuple[int, ...] | None
    target_size: int
    overlap_k: int
    progress: Progress

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Audit:
        progress = data["progress"]
        judges = data.get("judges")
        return cls(
            id=int(data["id"]),
            name=str(data["name"]),
            dataset=str(data["dataset"]),
            status=str(data["status"]),
            judges=tuple(int(j) for j in judges) if judges is not None else None,
            target_size=int(data["target_size"]),
            overlap_k=int(data["overlap_k"]),
            progress=Progress(
                items=int(progress["items"]),
                labels_done=int(progress["labels_done"]),
                labels_needed=int(progress["labels_needed"]),
                items_complete=int(progress["items_complete"]),
            ),
        )


@dataclass(frozen=True)
class Report:
    """An audit's (or dataset's) figures: the latest snapshot, as the report pages show them.

    ``snapshot`` is None until the first one is computed; ``pending`` says a newer one is on
    its way. ``metrics`` is the snapshot's every figure (see the project's analysis.services).
    """

    subject: dict[str, Any]
    pending: bool
    snapshot: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def metrics(self) -> dict[str, Any]:
        return dict((self.snapshot or {}).get("metrics") or {})

    @property
    def label_count(self) -> int | None:
        return int(self.snapshot["label_count"]) if self.snapshot else None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        return cls(
            subject=dict(data.get("subject") or {}),
            pending=bool(data.get("pending")),
            snapshot=data.get("snapshot"),
            raw=data,
        )


@dataclass(frozen=True)
class GateRule:
    rule: str
    status: GateStatus
    reason: str
    labels_needed: int | None
    slices: list[dict[str, Any]]


@dataclass(frozen=True)
class GateJudge:
    id: int
    name: str
    version: int

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


@dataclass(frozen=True)
class GateResult:
    """A release gate's verdict: PASS, FAIL or INCONCLUSIVE, with the reason per rule.

    ``exit_code`` is 0, 1 or 2, as ``manage.py gate`` exits; ``judge`` is the version whose
    figures were read (None when there were none).
    """

    audit: int
    gate: int | None
    status: GateStatus
    exit_code: int
    reason: str
    labels_needed: int | None
    judge: GateJudge | None
    pinned_fingerprint: str | None
    fingerprint: str | None
    snapshot: int | None
    rules: list[GateRule]
    raw: dict[str, Any] = field(repr=False)

    def lines(self) -> list[str]:
        """The verdict as ``manage.py gate`` prints it, line by line."""
        judge_text = str(self.judge) if self.judge else "no judge figures"
        out = [f"{self.status}: {self.reason}", f"audit {self.audit} · judge {judge_text}"]
        out += [f"  [{rule.status}] {rule.rule}: {rule.reason}" for rule in self.rules]
        if self.labels_needed is not None:
            out.append(f"about {self.labels_needed} more labels to decide")
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GateResult:
        judge = data.get("judge")
        return cls(
            audit=int(data["audit"]),
            gate=data.get("gate"),
            status=data["status"],
            exit_code=int(data["exit_code"]),
            reason=str(data["reason"]),
            labels_needed=data.get("labels_needed"),
            judge=GateJudge(int(judge["id"]), str(judge["name"]), int(judge["version"]))
            if judge
            else None,
            pinned_fingerprint=data.get("pinned_fingerprint"),
            fingerprint=data.get("fingerprint"),
            snapshot=data.get("snapshot"),
            rules=[
                GateRule(
                    rule=str(rule["rule"]),
                    status=rule["status"],
                    reason=str(rule["reason"]),
                    labels_needed=rule.get("labels_needed"),
                    slices=list(rule.get("slices") or []),
                )
                for rule in data.get("rules") or []
            ],
            raw=data,
        )


@dataclass(frozen=True)
class Export:
    """A calibration set on disk: the data file, its manifest beside it, checked by sha256."""

    path: Path
    manifest_path: Path
    manifest: dict[str, Any]
    sha256: str
    size: int
