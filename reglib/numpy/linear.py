"""Penalized linear regression from scratch: ridge, lasso, elastic net, ISTA/FISTA.

All models have no intercept (center ``X`` and ``y`` first if you need one). Shapes:
``X`` is ``(n, d)``, ``y`` is ``(n,)``, the returned weights ``w`` are ``(d,)``, float64.

Objectives (the same scalings as scikit-learn, so each solver is checked against it):

* :func:`ridge`: ``||y - X w||^2 + lam ||w||^2`` = ``Ridge(alpha=lam, fit_intercept=False)``;
* :func:`lasso`: ``1/(2n) ||y - X w||^2 + lam ||w||_1`` = ``Lasso(alpha=lam, fit_intercept=False)``;
* :func:`elastic_net`: ``1/(2n) ||y - X w||^2 + lam l1_ratio ||w||_1 + lam (1 - l1_ratio)/2 ||w||^2``
  = ``ElasticNet(alpha=lam, l1_ratio=l1_ratio, fit_intercept=False)``.

Note the different data-term scalings: ridge (like scikit-learn's ``Ridge``) has no
``1/(2n)``, the lasso and elastic net do. Ridge with strength ``lam`` equals
:func:`elastic_net` with ``l1_ratio=0`` and strength ``lam / n``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from numpy.typing import ArrayLike

from reglib._validation import as_float_array, check_int, check_probability, check_scalar
from reglib.numpy.prox import soft_threshold

__all__ = [
    "ridge",
    "ridge_effective_dof",
    "lasso",
    "elastic_net",
    "lasso_ista",
    "lasso_objective",
    "elastic_net_objective",
]


def _check_Xy(X: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    X = as_float_array(X, "X", ndim=2).astype(np.float64, copy=False)
    y = as_float_array(y, "y", ndim=1).astype(np.float64, copy=False)
    if X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X and y must have the same number of rows, got X with shape {X.shape} and y with shape {y.shape}"
        )
    if X.shape[0] == 0:
        raise ValueError(f"X must have at least one row, got shape {X.shape}")
    return X, y


def _check_w(w: ArrayLike, d: int) -> np.ndarray:
    w = as_float_array(w, "w", ndim=1).astype(np.float64, copy=False)
    if w.shape[0] != d:
        raise ValueError(f"w must have shape ({d},) to match X, got shape {w.shape}")
    return w


def _lam(lam: float) -> float:
    return check_scalar(lam, "lam", min_value=0.0)


def ridge(X: ArrayLike, y: ArrayLike, lam: float) -> np.ndarray:
    """Ridge regression: minimize ``||y - X w||^2 + lam ||w||^2`` (no intercept).

    The minimizer is ``w = (X^T X + lam I)^{-1} X^T y = X^T (X X^T + lam I)^{-1} y``; it is
    computed by solving the smaller of the two linear systems (``d x d`` when ``d <= n``,
    ``n x n`` otherwise), never by forming an inverse. ``lam = 0`` gives the minimum-norm
    least-squares solution (``np.linalg.lstsq``), the limit of ridge as ``lam -> 0``.
    Equals ``sklearn.linear_model.Ridge(alpha=lam, fit_intercept=False).fit(X, y).coef_``.

    Shape:
        ``X``: ``(n, d)``, ``y``: ``(n,)``; returns ``(d,)``. Any ``d``, also ``d > n``.

    Args:
        X: design matrix.
        y: targets.
        lam: strength, ``>= 0``.

    Returns:
        The weights, float64.

    Raises:
        ValueError: for wrong dimensions, mismatched lengths, ``lam < 0``, NaN/inf.
        TypeError: for non-numeric input.
    """
    X, y = _check_Xy(X, y)
    lam = _lam(lam)
    n, d = X.shape
    if lam == 0.0:
        return np.linalg.lstsq(X, y, rcond=None)[0]
    if d <= n:
        A = X.T @ X
        A[np.diag_indices(d)] += lam
        return np.linalg.solve(A, X.T @ y)
    K = X @ X.T
    K[np.diag_indices(n)] += lam
    return X.T @ np.linalg.solve(K, y)


def ridge_effective_dof(X: ArrayLike, lam: float) -> float:
    """Effective degrees of freedom of ridge: the trace of its hat matrix.

        df(lam) = tr(X (X^T X + lam I)^{-1} X^T) = sum_i s_i^2 / (s_i^2 + lam)

    with ``s_i`` the singular values of ``X`` (computed by an SVD). It falls from
    ``rank(X)`` at ``lam = 0`` towards 0 as ``lam`` grows. Same ``lam`` as :func:`ridge`.

    Shape:
        ``X``: ``(n, d)``.

    Args:
        X: design matrix.
        lam: strength, ``>= 0``.

    Returns:
        The effective number of parameters, a float in ``[0, min(n, d)]``.

    Raises:
        ValueError, TypeError: for bad ``X`` or ``lam``.
    """
    X = as_float_array(X, "X", ndim=2).astype(np.float64, copy=False)
    lam = _lam(lam)
    if X.size == 0:
        return 0.0
    s2 = np.linalg.svd(X, compute_uv=False) ** 2
    if lam == 0.0:  # the rank, with numpy's default tolerance
        return float(np.linalg.matrix_rank(X))
    return float(np.sum(s2 / (s2 + lam)))


def lasso_objective(X: ArrayLike, y: ArrayLike, w: ArrayLike, lam: float) -> float:
    """Lasso objective ``1/(2n) ||y - X w||^2 + lam ||w||_1`` (scikit-learn's scaling).

    Shape:
        ``X``: ``(n, d)``, ``y``: ``(n,)``, ``w``: ``(d,)``.

    Returns:
        The objective as a Python float.

    Raises:
        ValueError, TypeError: for bad or mismatched input.
    """
    return elastic_net_objective(X, y, w, lam, 1.0)


def elastic_net_objective(X: ArrayLike, y: ArrayLike, w: ArrayLike, lam: float, l1_ratio: float) -> float:
    """Elastic-net objective in scikit-learn's scaling.

        1/(2n) ||y - X w||^2 + lam * l1_ratio * ||w||_1 + lam * (1 - l1_ratio) / 2 * ||w||^2

    Shape:
        ``X``: ``(n, d)``, ``y``: ``(n,)``, ``w``: ``(d,)``.

    Returns:
        The objective as a Python float.

    Raises:
        ValueError, TypeError: for bad or mismatched input.
    """
    X, y = _check_Xy(X, y)
    w = _check_w(w, X.shape[1])
    lam = _lam(lam)
    a = check_probability(l1_ratio, "l1_ratio")
    r = y - X @ w
    n = X.shape[0]
    return float(r @ r / (2 * n) + lam * a * np.sum(np.abs(w)) + 0.5 * lam * (1 - a) * (w @ w))


def _duality_gap(X: np.ndarray, y: np.ndarray, w: np.ndarray, r: np.ndarray, alpha: float, beta: float) -> float:
    """Duality gap of ``P(w) = 1/2 ||y - Xw||^2 + alpha ||w||_1 + beta/2 ||w||^2`` (``r = y - Xw``).

    Two dual lower bounds are evaluated at points built from the residual, and the better
    one is used:

    * the lasso dual ``1/2 ||y||^2 - 1/2 ||y - theta||^2`` over ``||X~^T theta~||_inf <= alpha``
      for the equivalent lasso with ``X~ = [X; sqrt(beta) I]``, at the rescaled residual
      (scikit-learn's choice; it degenerates when ``alpha = 0``);
    * for ``beta > 0``, the unconstrained Fenchel dual
      ``1/2 ||y||^2 - 1/2 ||y - theta||^2 - 1/(2 beta) sum_j (|x_j^T theta| - alpha)_+^2``
      at ``theta = r``.
    """
    xtr = X.T @ r
    r2 = float(r @ r)
    w2 = float(w @ w)
    primal = 0.5 * r2 + alpha * float(np.sum(np.abs(w))) + 0.5 * beta * w2
    fitted = y - r
    base = 0.5 * float(y @ y)
    # lasso dual at const * [r; -sqrt(beta) w], feasible after rescaling
    aug = xtr - beta * w
    dual_norm = float(np.max(np.abs(aug))) if aug.size else 0.0
    const = alpha / dual_norm if dual_norm > alpha else 1.0
    theta_y = const * float(r @ y)
    theta2 = const**2 * (r2 + beta * w2)
    best = theta_y - 0.5 * theta2  # = 1/2||y~||^2 - 1/2||y~ - theta~||^2
    if beta > 0.0:
        excess = np.maximum(np.abs(xtr) - alpha, 0.0)
        fenchel = base - 0.5 * float(fitted @ fitted) - 0.5 / beta * float(excess @ excess)
        best = max(best, fenchel)
    return primal - best


class _Problem:
    """Data of one elastic-net fit, on ``n`` times the objective:
    ``P(w) = 1/2 ||y - Xw||^2 + alpha ||w||_1 + beta/2 ||w||^2``."""

    def __init__(self, X: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> None:
        self.X, self.y, self.alpha, self.beta = X, y, alpha, beta
        d = X.shape[1]
        self.gram = X.T @ X if d <= 2000 else None  # for the exact solves on a support
        self.Xty = X.T @ y

    def objective(self, w: np.ndarray, r: np.ndarray) -> float:
        return 0.5 * float(r @ r) + self.alpha * float(np.sum(np.abs(w))) + 0.5 * self.beta * float(w @ w)

    def face_minimizer(self, active: np.ndarray, signs: np.ndarray) -> np.ndarray:
        """Minimizer of ``1/2 ||y - X_S v||^2 + alpha s.v + beta/2 ||v||^2`` (assumed to exist)."""
        if self.gram is not None:
            A = self.gram[np.ix_(active, active)]
        else:
            XS = self.X[:, active]
            A = XS.T @ XS
        A = A + self.beta * np.eye(active.size)
        b = self.Xty[active] - self.alpha * signs
        try:
            return np.linalg.solve(A, b)
        except np.linalg.LinAlgError:
            return np.linalg.lstsq(A, b, rcond=None)[0]

    def descend_on_faces(self, w: np.ndarray, max_moves: int = 5) -> np.ndarray:
        """Lower ``P`` by exact moves on the face of the current support and signs.

        On the orthant face of the support ``S`` and signs ``s`` of ``w``, ``P`` is the
        quadratic ``Q(v) = 1/2 ||y - X_S v||^2 + alpha s.v + beta/2 ||v||^2``. Repeat:

        * if ``Q`` is unbounded below (``beta = 0``, more coordinates than rows, and ``s`` has
          a component ``-d`` in the null space of ``X_S``), move along ``d`` (``X_S d = 0``, so
          only the L1 term changes, and it falls) until a coordinate reaches zero, and drop it;
        * otherwise solve for the minimizer ``c`` of ``Q``; if ``c`` keeps the signs, it is the
          exact minimizer over the face: stop there. Else move from ``w`` towards ``c`` (``Q``
          falls along the segment) up to the first coordinate that reaches zero, and drop it.

        This is the feature-sign search of Lee, Battle, Raina and Ng (2007), stopped after
        ``max_moves`` moves to bound the cost of each call (each is a linear solve). Every move
        keeps the signs, so ``P = Q`` along it and ``P`` never increases. Coordinates outside
        the support are left at zero: the caller's coordinate sweeps bring them in.
        """
        X, alpha, beta = self.X, self.alpha, self.beta
        w = w.copy()
        for _ in range(max_moves):
            active = np.flatnonzero(w)
            if active.size == 0 or active.size > 2000:
                return w
            signs = np.sign(w[active])
            cur = w[active]
            if beta == 0.0 and active.size > X.shape[0]:  # X_S has a null space
                XS = X[:, active]
                d = -(signs - np.linalg.pinv(XS) @ (XS @ signs))  # -s projected on null(X_S)
                if np.linalg.norm(d) > 1e-8 * math.sqrt(active.size):
                    moving = cur * d < 0  # coordinates heading for zero (there is one: s.d < 0)
                    if not moving.any():
                        return w
                    frac = -cur[moving] / d[moving]
                    t = float(np.min(frac))
                    new = cur + t * d
                    new[np.flatnonzero(moving)[frac <= t]] = 0.0
                    w[active] = new
                    continue
            cand = self.face_minimizer(active, signs)
            crossing = np.sign(cand) != signs
            if not crossing.any():
                w[active] = cand
                return w
            frac = cur[crossing] / (cur[crossing] - cand[crossing])  # where each reaches zero
            t = float(np.min(frac))
            new = cur + t * (cand - cur)
            new[np.flatnonzero(crossing)[frac <= t]] = 0.0
            w[active] = new
        return w


def _coordinate_descent(
    X: np.ndarray, y: np.ndarray, lam: float, a: float, max_iter: int, tol: float, name: str
) -> np.ndarray:
    """Elastic net (scikit-learn's objective) by cyclic coordinate descent with exact face solves.

    Works on ``n`` times the objective: ``1/2 ||y - Xw||^2 + alpha ||w||_1 + beta/2 ||w||^2``.
    Each outer iteration is one sweep over all coordinates (each update exact: a
    soft-thresholding), then :meth:`_Problem.descend_on_faces` (exact solves on the support
    and signs found so far, which finish ill-conditioned problems, where sweeps alone
    converge slowly, and give the solution to rounding error once the support is right),
    then the duality-gap test. If the test fails, the nonzero coordinates (the active set)
    are swept until their updates are negligible, with a face descent every 5 sweeps, and
    the next outer iteration starts. Every step lowers the objective or leaves it unchanged.
    """
    n, d = X.shape
    prob = _Problem(X, y, n * lam * a, n * lam * (1.0 - a))
    alpha, beta = prob.alpha, prob.beta
    w = np.zeros(d)
    r = y.copy()
    col_sq = np.einsum("ij,ij->j", X, X)
    cols = [np.ascontiguousarray(X[:, j]) for j in range(d)]
    scale = max(0.5 * float(y @ y), np.finfo(float).tiny)  # n * objective at w = 0
    all_idx = [j for j in range(d) if col_sq[j] > 0.0]

    def sweep(indices: list[int]) -> float:
        """Update the coordinates in order; return the largest ``col_sq[j] * change^2``."""
        biggest = 0.0
        for j in indices:
            xj, wj, cj = cols[j], w[j], col_sq[j]
            rho = float(xj @ r) + cj * wj
            new = math.copysign(max(abs(rho) - alpha, 0.0), rho) / (cj + beta)
            if new != wj:
                r[:] -= (new - wj) * xj
                w[j] = new
                biggest = max(biggest, cj * (new - wj) ** 2)
        return biggest

    def face_step() -> bool:
        """Move to the result of a face descent if it lowers the objective."""
        cand = prob.descend_on_faces(w)
        r_cand = y - X @ cand
        if not prob.objective(cand, r_cand) < prob.objective(w, r):
            return False
        w[:], r[:] = cand, r_cand
        return True

    for _ in range(max_iter):
        sweep(all_idx)
        face_step()
        if _duality_gap(X, y, w, r, alpha, beta) <= tol * scale:
            return w
        active = [j for j in all_idx if w[j] != 0.0]
        for inner in range(1, 1001):
            if sweep(active) <= tol * scale:
                break
            if inner % 5 == 0 and face_step():
                break
    warnings.warn(
        f"{name} did not converge in max_iter={max_iter} sweeps (duality gap "
        f"{_duality_gap(X, y, w, r, alpha, beta) / scale:.2e} > tol={tol:g} relative); "
        "increase max_iter or tol",
        RuntimeWarning,
        stacklevel=4,
    )
    return w


def _fit_enet(
    X: ArrayLike, y: ArrayLike, lam: float, l1_ratio: float, max_iter: int, tol: float, name: str
) -> np.ndarray:
    X, y = _check_Xy(X, y)
    lam = _lam(lam)
    a = check_probability(l1_ratio, "l1_ratio")
    max_iter = check_int(max_iter, "max_iter", min_value=1)
    tol = check_scalar(tol, "tol", min_value=0.0, include_min=False)
    return _coordinate_descent(X, y, lam, a, max_iter, tol, name)


def lasso(X: ArrayLike, y: ArrayLike, lam: float, *, max_iter: int = 10_000, tol: float = 1e-13) -> np.ndarray:
    """Lasso: minimize ``1/(2n) ||y - X w||^2 + lam ||w||_1`` by cyclic coordinate descent.

    Same objective as ``sklearn.linear_model.Lasso(alpha=lam, fit_intercept=False)``.
    Starts from ``w = 0``. Each coordinate update is exact (a soft-thresholding), so
    coefficients are exactly zero where the solution is. Between sweeps, the support and
    signs found so far are tried by exact linear solves (feature-sign search, Lee et al.
    2007), which never raise the objective and end ill-conditioned problems quickly.
    After every sweep over all coordinates it computes the duality gap and stops when it
    is at most ``tol * ||y||^2 / (2n)`` (``tol`` is relative to the objective at ``w = 0``;
    the objective is then within that much of its minimum). With the default the result
    agrees with scikit-learn run to a tight ``tol`` to about 1e-9 on well-conditioned
    problems, exact zeros included.

    Shape:
        ``X``: ``(n, d)``, ``y``: ``(n,)``; returns ``(d,)``.

    Args:
        X: design matrix.
        y: targets.
        lam: strength, ``>= 0``.
        max_iter: maximum number of sweeps, ``>= 1``.
        tol: relative duality-gap tolerance, ``> 0``.

    Returns:
        The weights, float64.

    Warns:
        RuntimeWarning: if the gap is still above tolerance after ``max_iter`` sweeps.

    Raises:
        ValueError, TypeError: for bad or mismatched input.
    """
    return _fit_enet(X, y, lam, 1.0, max_iter, tol, "lasso")


def elastic_net(
    X: ArrayLike,
    y: ArrayLike,
    lam: float,
    l1_ratio: float,
    *,
    max_iter: int = 10_000,
    tol: float = 1e-13,
) -> np.ndarray:
    """Elastic net by cyclic coordinate descent (scikit-learn's objective).

        minimize 1/(2n) ||y - X w||^2 + lam * l1_ratio * ||w||_1 + lam * (1 - l1_ratio) / 2 * ||w||^2

    Same as ``sklearn.linear_model.ElasticNet(alpha=lam, l1_ratio=l1_ratio,
    fit_intercept=False)``. Coordinate ``j`` is updated exactly by
    ``w_j = S(x_j^T r_j / n, lam * l1_ratio) / (||x_j||^2 / n + lam * (1 - l1_ratio))`` with
    ``r_j`` the residual without feature ``j``. Exact solves on the support and stopping
    rule (a duality gap of at most ``tol`` times the objective at ``w = 0``) as in
    :func:`lasso`.

    Shape:
        ``X``: ``(n, d)``, ``y``: ``(n,)``; returns ``(d,)``.

    Args:
        X: design matrix.
        y: targets.
        lam: strength, ``>= 0``.
        l1_ratio: L1 fraction in ``[0, 1]`` (1: lasso, 0: ridge with strength ``n * lam``
            in :func:`ridge`'s scaling).
        max_iter: maximum number of sweeps, ``>= 1``.
        tol: relative duality-gap tolerance, ``> 0``.

    Returns:
        The weights, float64.

    Warns:
        RuntimeWarning: if the gap is still above tolerance after ``max_iter`` sweeps.

    Raises:
        ValueError, TypeError: for bad or mismatched input.
    """
    return _fit_enet(X, y, lam, l1_ratio, max_iter, tol, "elastic_net")


def lasso_ista(
    X: ArrayLike,
    y: ArrayLike,
    lam: float,
    n_iters: int,
    *,
    accelerated: bool = False,
    return_path: bool = False,
) -> np.ndarray:
    """Exactly ``n_iters`` proximal-gradient steps for the lasso, from ``w = 0``.

    Objective ``F(w) = 1/(2n) ||y - X w||^2 + lam ||w||_1`` (as :func:`lasso`). With
    ``L`` the largest eigenvalue of ``X^T X / n`` (the Lipschitz constant of the data
    term's gradient, computed as ``||X||_2^2 / n``) and ``grad(w) = X^T (X w - y) / n``:

    * ISTA (``accelerated=False``): ``w_{k+1} = S(w_k - grad(w_k) / L, lam / L)``;
      ``F(w_k)`` never increases.
    * FISTA (``accelerated=True``, Beck and Teboulle 2009): with ``z_1 = w_0 = 0``,
      ``t_1 = 1``: ``w_k = S(z_k - grad(z_k) / L, lam / L)``,
      ``t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2``,
      ``z_{k+1} = w_k + ((t_k - 1) / t_{k+1}) (w_k - w_{k-1})``. ``F(w_k) - F*`` falls
      like ``1/k^2`` but not monotonically.

    The first step of either is ``w_1 = S(X^T y / (n L), lam / L)``. The iterates are
    deterministic, so they can be compared one by one.

    Shape:
        ``X``: ``(n, d)``, ``y``: ``(n,)``; returns ``(d,)``, or ``(n_iters + 1, d)``
        (rows ``w_0 = 0, w_1, ..., w_{n_iters}``) with ``return_path=True``.

    Args:
        X: design matrix.
        y: targets.
        lam: strength, ``>= 0``.
        n_iters: number of steps, ``>= 0``.
        accelerated: FISTA instead of ISTA.
        return_path: also return every iterate.

    Returns:
        ``w_{n_iters}``, or all iterates.

    Raises:
        ValueError, TypeError: for bad or mismatched input.
    """
    X, y = _check_Xy(X, y)
    lam = _lam(lam)
    n_iters = check_int(n_iters, "n_iters", min_value=0)
    if not isinstance(accelerated, (bool, np.bool_)):
        raise TypeError(f"accelerated must be a bool, got {type(accelerated).__name__} {accelerated!r}")
    n, d = X.shape
    L = float(np.linalg.norm(X, 2)) ** 2 / n if X.size else 0.0
    path = np.zeros((n_iters + 1, d)) if return_path else None
    w = np.zeros(d)
    if L == 0.0:  # X = 0: the minimizer is w = 0, which is where we start
        return path if return_path else w
    Xty = X.T @ y / n

    def step(z: np.ndarray) -> np.ndarray:
        grad = X.T @ (X @ z) / n - Xty
        return soft_threshold(z - grad / L, lam / L)

    z, t = w, 1.0
    for k in range(n_iters):
        w_new = step(z if accelerated else w)
        if accelerated:
            t_new = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
            z = w_new + ((t - 1.0) / t_new) * (w_new - w)
            t = t_new
        w = w_new
        if path is not None:
            path[k + 1] = w
    return path if path is not None else w
