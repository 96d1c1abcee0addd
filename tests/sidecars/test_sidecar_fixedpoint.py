"""Fixed-point conversion in and out of models is exact and rounds half to even."""

import numpy as np
import pytest

from sidecars.fixedpoint import InputOutOfRange, NonFiniteOutput, quantize, to_float32


def test_quantize_rounds_the_exact_binary_value_half_to_even():
    outputs = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.25, 0.375], dtype=np.float32)
    assert quantize(outputs, 0) == [0, 2, 2, 0, -2, 0, 0]
    assert quantize(outputs, 1) == [5, 15, 25, -5, -15, 2, 4]  # 2.5 → 2, 3.75 → 4
    # 0.1 in float32 is 0.100000001490116...; at 9 digits it rounds up, at 8 it doesn't.
    assert quantize(np.array([0.1], dtype=np.float32), 9) == [100000001]
    assert quantize(np.array([0.1], dtype=np.float32), 8) == [10000000]
    assert quantize(np.array([[1.0, -2.0]], dtype=np.float32), 18) == [10**18, -2 * 10**18]


def test_non_finite_outputs_have_no_fixed_point_value():
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(NonFiniteOutput):
            quantize(np.array([1.0, bad], dtype=np.float32), 6)


def test_inputs_become_the_nearest_float32():
    array = to_float32([1, -15, 10**18 // 3], 1)
    assert array.dtype == np.float32
    assert array.tolist() == [np.float32(0.1), np.float32(-1.5), np.float32(10**17 / 3)]
    with pytest.raises(InputOutOfRange):
        to_float32([10**40], 0)
