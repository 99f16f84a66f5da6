"""Where the refusal classifier's data files live, and the error a malformed one raises.

A module of its own so that the readers of the training data, the held-out sources and the
check sets can all import it without importing each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

TRAINING_DIR: Final = Path(__file__).resolve().parents[1] / "data" / "refusal_training"
HELDOUT_DIR: Final = TRAINING_DIR / "heldout"


class TrainingDataError(ValueError):
    """A training or XSTest file is not as expected; the message names file and line."""
