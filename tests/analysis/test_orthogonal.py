"""orthogonal_map (REFERENCE §5, kexue.fm 8453): T a = b and TᵀT = I for both forms, degenerate cases, errors."""

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from semspace.analysis import orthogonal_map
from semspace.errors import InvalidInputError, InvalidParameterError

KINDS = ("householder", "rotation")


@st.composite
def equal_norm_pair(draw, max_d=8):
    d = draw(st.integers(1, max_d))
    elements = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
    a = draw(arrays(np.float64, d, elements=elements))
    b = draw(arrays(np.float64, d, elements=elements))
    assume(np.linalg.norm(a) > 1e-3 and np.linalg.norm(b) > 1e-3)
    return a, b * (np.linalg.norm(a) / np.linalg.norm(b))


def check_orthogonal_map(T, a, b):
    d = a.size
    scale = max(1.0, np.linalg.norm(a))
    np.testing.assert_allclose(T @ a, b, atol=1e-7 * scale)
    np.testing.assert_allclose(T.T @ T, np.eye(d), atol=1e-9)


@settings(max_examples=150, deadline=None)
@given(pair=equal_norm_pair(), kind=st.sampled_from(KINDS))
def test_maps_a_to_b_and_is_orthogonal(pair, kind):
    a, b = pair
    if kind == "rotation" and a.size == 1 and np.sign(a[0]) != np.sign(b[0]):
        with pytest.raises(InvalidInputError, match="one dimension"):
            orthogonal_map(a, b, kind)
        return
    T = orthogonal_map(a, b, kind)
    assert T.shape == (a.size, a.size) and T.dtype == np.float64
    check_orthogonal_map(T, a, b)


@settings(max_examples=100, deadline=None)
@given(pair=equal_norm_pair())
@example(pair=(np.array([1.0, 0.0]), np.array([1.0, 7.09508975e-177])))  # vᵀv underflows to 0
@example(pair=(np.array([-5.0, -5.0]), np.full(2, np.nextafter(-5.0, -np.inf))))  # a = b to the last bit: T a was −a
def test_householder_is_a_symmetric_involution(pair):
    a, b = pair
    T = orthogonal_map(a, b, "householder")
    np.testing.assert_allclose(T, T.T, atol=1e-12)
    np.testing.assert_allclose(T @ T, np.eye(a.size), atol=1e-9)
    scale = max(1.0, np.linalg.norm(a))
    # A reflection (det −1) unless â = b̂ to round-off, where it is exactly the identity.
    if np.array_equal(T, np.eye(a.size)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * scale)
    else:
        assert np.linalg.det(T) == pytest.approx(-1.0, abs=1e-9)
    np.testing.assert_allclose(T @ a, b, atol=1e-7 * scale)
    np.testing.assert_allclose(T @ b, a, atol=1e-7 * scale)


@settings(max_examples=100)
@given(
    a=arrays(np.float64, st.integers(1, 8), elements=st.floats(-10, 10, allow_nan=False, allow_infinity=False)),
    ulps=st.integers(-4, 4),
    kind=st.sampled_from(KINDS),
)
@example(a=np.array([-5.0, -5.0]), ulps=1, kind="householder")
def test_equal_and_nearly_equal_inputs(a, ulps, kind):
    """a and b a few ulps apart (the same vector up to round-off): T a = b, never the reflection to −a."""
    assume(np.linalg.norm(a) > 1e-3)
    b = a.copy()
    for _ in range(abs(ulps)):
        b = np.nextafter(b, np.inf if ulps > 0 else -np.inf)
    T = orthogonal_map(a, b, kind)
    check_orthogonal_map(T, a, b)
    check_orthogonal_map(orthogonal_map(a, a, kind), a, a)


@settings(max_examples=100, deadline=None)
@given(pair=equal_norm_pair(), seed=st.integers(0, 1000))
def test_rotation_has_det_one_and_fixes_the_orthogonal_complement(pair, seed):
    a, b = pair
    assume(a.size >= 2)
    T = orthogonal_map(a, b, "rotation")
    assert np.linalg.det(T) == pytest.approx(1.0, abs=1e-9)
    # Any vector orthogonal to span{a, b} is left alone (except in the canonical b = −a case, which uses another
    # plane through a).
    ua, ub = a / np.linalg.norm(a), b / np.linalg.norm(b)
    assume(np.linalg.norm(ua + ub) > 1e-6)
    basis = np.linalg.qr(np.column_stack([ua, ub]))[0]
    v = np.random.default_rng(seed).normal(size=a.size)
    v -= basis @ (basis.T @ v)
    np.testing.assert_allclose(T @ v, v, atol=1e-8 * max(1.0, np.linalg.norm(v)))


def test_degenerate_cases():
    a = np.array([3.0, -1.0, 2.0])
    for kind in KINDS:
        np.testing.assert_array_almost_equal(orthogonal_map(a, a, kind), np.eye(3), decimal=12)
    np.testing.assert_array_equal(orthogonal_map(a, a, "householder"), np.eye(3))
    for kind in KINDS:  # b = −a: the reflection is fine; the rotation picks a canonical plane through a
        T = orthogonal_map(a, -a, kind)
        check_orthogonal_map(T, a, -a)
    assert np.linalg.det(orthogonal_map(a, -a, "rotation")) == pytest.approx(1.0)
    nearly = -a + np.array([0, 1e-10, 0])
    nearly *= np.linalg.norm(a) / np.linalg.norm(nearly)
    check_orthogonal_map(orthogonal_map(a, nearly, "rotation"), a, nearly)
    np.testing.assert_array_equal(orthogonal_map([2.0], [2.0], "rotation"), [[1.0]])
    np.testing.assert_array_equal(orthogonal_map([2.0], [-2.0], "householder"), [[-1.0]])
    with pytest.raises(InvalidInputError, match="no rotation maps a to −a in one dimension"):
        orthogonal_map([2.0], [-2.0], "rotation")


def test_normalize_maps_directions():
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 5.0])
    with pytest.raises(InvalidInputError, match="normalize=True"):
        orthogonal_map(a, b)
    for kind in KINDS:
        T = orthogonal_map(a, b, kind, normalize=True)
        np.testing.assert_allclose(T @ a, b / 5, atol=1e-12)
    # Within rtol the lengths count as equal.
    orthogonal_map(a, np.array([0.0, 1.0 + 1e-9, 0.0]))


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (np.zeros(3), np.ones(3), "a is the zero vector"),
        (np.ones(3), np.zeros(3), "b is the zero vector"),
        (np.ones(3), np.ones(4), "a has 3 dimensions and b has 4"),
        (np.ones((2, 2)), np.ones((2, 2)), "1-D"),
        (np.array([]), np.array([]), "non-empty"),
        (np.array([1.0, np.nan]), np.ones(2), "NaN"),
        (["x", "y"], np.ones(2), "numeric"),
    ],
)
def test_bad_vectors(a, b, message):
    with pytest.raises(InvalidInputError, match=message):
        orthogonal_map(a, b)


def test_bad_kind():
    with pytest.raises(InvalidParameterError, match=r"The 'kind' parameter of orthogonal_map must be"):
        orthogonal_map(np.ones(2), np.ones(2), kind="givens")
