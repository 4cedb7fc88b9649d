"""Orthogonal maps T with T a = b (kexue.fm 8453).

For unit vectors a, b:

- Householder reflection: T = I − (a−b)(a−b)ᵀ / (1 − aᵀb)   (T = I when a = b); symmetric, T² = I, det T = −1.
- Rotation in span{a, b}: T = I + 2baᵀ − (a+b)(a+b)ᵀ / (1 + aᵀb)   (undefined for b = −a); det T = +1, and every
  vector orthogonal to a and b is left alone.

An orthogonal T keeps norms, so T a = b needs ‖a‖ = ‖b‖. This module therefore works on the unit directions
â = a/‖a‖, b̂ = b/‖b‖ and checks that the norms agree (relative tolerance `rtol`); pass ``normalize=True`` to map
the direction of a onto the direction of b whatever their lengths (then T â = b̂ and T a = (‖a‖/‖b‖) b).

The denominators are computed as squared norms, 1 − âᵀb̂ = ‖â − b̂‖²/2 and 1 + âᵀb̂ = ‖â + b̂‖²/2, which avoids
the cancellation of 1 − cos when a ≈ b. For the rotation with b̂ = −â (within √machine-ε) every plane through a
gives a rotation by π; we choose a canonical one, the plane spanned by â and the unit vector e ⊥ â obtained from
the coordinate axis least aligned with â: T = I − 2ââᵀ − 2eeᵀ. In one dimension no rotation maps a to −a, and
that case raises.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from semspace.errors import InvalidInputError, check_param

# Below this distance between â and −b̂ the rotation plane is numerically undetermined (error ~ machine-ε/‖â+b̂‖),
# so the canonical plane is used; at the threshold both branches are accurate to about √machine-ε.
_OPPOSITE_TOL = float(np.sqrt(np.finfo(np.float64).eps))


def _as_vector(x: object, name: str) -> np.ndarray:
    try:
        v = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(f"orthogonal_map: {name} must be a 1-D numeric vector.") from None
    if v.ndim != 1 or v.size == 0:
        raise InvalidInputError(f"orthogonal_map: {name} must be a non-empty 1-D vector; got shape {v.shape}.")
    if not np.isfinite(v).all():
        raise InvalidInputError(f"orthogonal_map: {name} contains NaN or inf.")
    return v


def _unit(v: np.ndarray, name: str) -> tuple[np.ndarray, float]:
    norm = float(np.linalg.norm(v))
    if norm <= np.finfo(np.float64).tiny:
        raise InvalidInputError(f"orthogonal_map: {name} is the zero vector; it has no direction to map.")
    return v / norm, norm


def _orthogonal_unit(a: np.ndarray) -> np.ndarray:
    """A unit vector orthogonal to unit a: the coordinate axis least aligned with a, minus its a-component."""
    axis = np.zeros_like(a)
    axis[int(np.argmin(np.abs(a)))] = 1.0
    e = axis - (a @ axis) * a
    return e / np.linalg.norm(e)


def _householder_vector(ua: np.ndarray, ub: np.ndarray) -> np.ndarray | None:
    """The reflection vector v ∝ â − b̂ (scaled to max |entry| 1), or None when â = b̂ to round-off (T = I).

    The computed â, b̂ have norms 1 ± machine-ε, and the reflection along v maps â to b̂ only when ‖â‖ = ‖b̂‖:
    its error is v·(‖b̂‖² − ‖â‖²)/‖v‖², of order 1 when â ≈ b̂ (hypothesis found a = b = (−5, −5) up to the
    last bit mapped to −a). Exactly, â − b̂ ⟂ â + b̂, so the component of v along s = â + b̂ is that round-off;
    projecting it out makes the error O(machine-ε) whatever ‖v‖, and what is left below round-off means â = b̂.
    """
    v = ua - ub
    largest = float(np.abs(v).max())
    if largest == 0.0:
        return None
    # Scale by the largest entry first: vᵀv of a tiny v (≈1e-177) underflows to 0 and would drop the reflection.
    v = v / largest
    s = ua + ub
    ss = float(s @ s)
    if ss > 2.0:  # âᵀb̂ > 0: near â = b̂ is where the norm round-off dominates v (for âᵀb̂ ≤ 0, ‖v‖ ≥ √2)
        v = v - (float(v @ s) / ss) * s
        # The projection cancels up to ~ε·‖v before‖ (≤ ε·√d after the scaling); below a few times that, v is noise.
        if float(np.linalg.norm(v)) <= 16 * np.finfo(np.float64).eps * np.sqrt(v.size):
            return None
    return v


def orthogonal_map(
    a: np.ndarray,
    b: np.ndarray,
    kind: Literal["householder", "rotation"] = "householder",
    normalize: bool = False,
    rtol: float = 1e-6,
) -> np.ndarray:
    """Orthogonal T (d, d), float64, with T a = b and TᵀT = I (kexue.fm 8453).

    Parameters
    ----------
    a, b:
        Non-zero vectors of one length d.
    kind:
        ``"householder"``: the reflection I − 2vvᵀ/vᵀv, v = â − b̂ (det −1; identity when â = b̂).
        ``"rotation"``: the rotation in span{a, b} (det +1); for b̂ = −â a canonical rotation by π (see module doc).
    normalize:
        False (default): ‖a‖ must equal ‖b‖ within `rtol`, else InvalidInputError, since no orthogonal T changes a
        length. True: map the direction of a onto the direction of b.
    rtol:
        Relative tolerance of the norm check.

    Example
    -------
    >>> T = orthogonal_map(np.array([1.0, 0.0]), np.array([0.0, 1.0]), kind="rotation")
    >>> np.round(T @ [1.0, 0.0], 12).tolist()
    [0.0, 1.0]
    """
    check_param("kind", "orthogonal_map", kind in ("householder", "rotation"), "'householder' or 'rotation'", kind)
    check_param(
        "rtol",
        "orthogonal_map",
        isinstance(rtol, int | float) and not isinstance(rtol, bool) and 0 <= rtol < 1,
        "a float in [0, 1)",
        rtol,
    )
    va, vb = _as_vector(a, "a"), _as_vector(b, "b")
    if va.shape != vb.shape:
        raise InvalidInputError(f"orthogonal_map: a has {va.size} dimensions and b has {vb.size}; they must match.")
    ua, na = _unit(va, "a")
    ub, nb = _unit(vb, "b")
    if not normalize and abs(na - nb) > rtol * max(na, nb):
        raise InvalidInputError(
            f"orthogonal_map: ‖a‖ = {na:.6g} and ‖b‖ = {nb:.6g} differ, and an orthogonal map keeps lengths; "
            "scale them to one length or pass normalize=True to map directions."
        )
    d = ua.size
    eye = np.eye(d)
    if kind == "householder":
        v = _householder_vector(ua, ub)
        if v is None:
            return eye
        # 2vvᵀ/vᵀv = (a−b)(a−b)ᵀ/(1 − aᵀb) for unit a, b, without the cancellation in 1 − aᵀb.
        return eye - (2.0 / float(v @ v)) * np.outer(v, v)
    s = ua + ub
    ss = float(s @ s)
    if np.sqrt(ss) <= _OPPOSITE_TOL:
        if d == 1:
            raise InvalidInputError(
                "orthogonal_map: no rotation maps a to −a in one dimension (only a reflection does); "
                "use kind='householder'."
            )
        e = _orthogonal_unit(ua)
        return eye - 2.0 * np.outer(ua, ua) - 2.0 * np.outer(e, e)
    # (a+b)(a+b)ᵀ/(1 + aᵀb) = 2ssᵀ/sᵀs for unit a, b.
    return eye + 2.0 * np.outer(ub, ua) - (2.0 / ss) * np.outer(s, s)
