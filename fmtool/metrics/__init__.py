"""Measures of the models: classification summaries, reconstruction quality, their plots."""

from __future__ import annotations

from typing import Any

import numpy as np


def float32_value(value: Any) -> float:
    """A number computed in float32 (a tensor element, a numpy scalar) as the shortest Python
    float that is the same float32: 22.144047, not 22.144046783447266. A plain float() keeps
    the binary value's every decimal, digits that float32 arithmetic never computed, and those
    would be printed by --json and compared by scripts as if they meant something."""
    return float(str(np.float32(float(value))))
