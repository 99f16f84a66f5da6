from __future__ import annotations

from annotation.roles import roles

__all__ = ["roles"]
