"""Fixed-point numbers in and out of the models, rounded the same way on every machine.

Contracts pass integers ``v`` that stand for ``v / 10**decimals``. The sidecar and anyone
who re-runs a model (tests, ``replicate`` mode) must turn them into floats and back
identically, so both directions are defined exactly here:

* in: ``v / 10**decimals`` is computed as an exact rational and rounded once to the
  nearest float64 (Python's int/int division is correctly rounded), then to the nearest
  float32 the model takes (round-half-to-even, as IEEE 754 and numpy do);
* out: the model's float output is taken at its exact binary value ``x``; ``x *
  10**decimals`` is rounded to the nearest integer, ties to even, with integer arithmetic
  only, so no float rounding of the product can differ between machines. NaN and
  infinities have no fixed-point value and raise :class:`NonFiniteOutput`.
"""

import math

import numpy as np

FLOAT32_MAX = float(np.finfo(np.float32).max)


class NonFiniteOutput(ValueError):
    """The model produced NaN or an infinity."""


class InputOutOfRange(ValueError):
    """A fixed-point input is too large for the model's float32 input."""


def to_float32(values: list[int], decimals: int) -> np.ndarray:
    """The float32 array a model receives for fixed-point ``values``."""
    scale = 10**decimals
    floats = [v / scale for v in values] if decimals else [float(v) for v in values]
    # Checked in Python and cast straight from the float64 values (numpy rounds each to
    # float32 as astype would): numpy's per-call overhead dwarfs its work on inputs this
    # small, and this runs on every AI call.
    if max(map(abs, floats), default=0.0) > FLOAT32_MAX:
        raise InputOutOfRange(f"an input value exceeds the float32 range (±{FLOAT32_MAX:.3e})")
    return np.array(floats, dtype=np.float32)


def quantize(outputs: np.ndarray, decimals: int) -> list[int]:
    """The fixed-point integers of a model's float outputs (round half to even)."""
    scale = 10**decimals
    result = []
    for x in outputs.reshape(-1).tolist():
        if not math.isfinite(x):
            raise NonFiniteOutput(f"the model produced a non-finite value ({x})")
        numerator, denominator = x.as_integer_ratio()
        quotient, remainder = divmod(numerator * scale, denominator)
        twice = 2 * remainder
        if twice > denominator or (twice == denominator and quotient & 1):
            quotient += 1
        result.append(quotient)
    return result
