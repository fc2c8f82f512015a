"""Gaussian mixtures of colours, many fitted at once.

GrabCut's colour models are small (a few thousand 3-vectors, four components) and many (two per
start, several starts per photo, a few rounds each). Fitted one at a time, as scikit-learn's
GaussianMixture does, the time goes into Python and call overhead, not arithmetic; here every
model of a round is fitted in the same array operations. The algorithm is scikit-learn's for
`GaussianMixture(components, covariance_type="full", random_state=0, reg_covar=...)`: k-means++
(its random draws replayed from the same seed) and Lloyd's k-means for the start, then EM until
the mean log-likelihood gains less than `tol`, so the models agree with it up to rounding.

Densities are worked out as one matrix product: log N(x | mu, P) is linear in the features
[x_i x_j (i <= j), x, 1], so a model's weighted log-densities at many points are those features
times one coefficient vector per component. That expansion loses more to rounding than
scikit-learn's differences from the means do, so it is worked in float64, while k-means works
in float32 as scikit-learn's does on float32 pixels.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

EM_TOL = 1e-3  # scikit-learn's default: stop when the mean log-likelihood gains less than this
EM_MAX_ROUNDS = 100  # scikit-learn's default cap on EM iterations
KMEANS_TOL = 1e-4  # scikit-learn's default: centres moving less than this share of the variance
KMEANS_MAX_ROUNDS = 300  # scikit-learn's default cap on Lloyd iterations
# Keeps an empty component's weight and mean finite, as scikit-learn does.
EMPTY = 10 * np.finfo(np.float64).eps


@dataclass(frozen=True)
class Mixtures:
    """G mixtures of K Gaussians in D dimensions: coefficients [G, K, F] such that
    features(x) @ coefficients[g, k] = log(weight_k N(x | mean_k, cov_k)) of mixture g."""

    coefficients: np.ndarray
    means: np.ndarray  # [G, K, D]
    covariances: np.ndarray  # [G, K, D, D]
    weights: np.ndarray  # [G, K]

    def log_densities(self, point_features: np.ndarray) -> np.ndarray:
        """[P, F] `features` of P points -> [G, P]: each mixture's log density at each point
        (scikit-learn's `score_samples`). The features are the caller's, so that points scored
        by several rounds of mixtures are turned into features once."""
        groups, components, width = self.coefficients.shape
        joint = self.coefficients.reshape(-1, width) @ point_features.T
        return _logsumexp(joint.reshape(groups, components, len(point_features)))


def features(points: np.ndarray) -> np.ndarray:
    """[..., D] -> float64 [..., F], F = D (D + 1) / 2 + D + 1: the products x_i x_j (i <= j),
    x, 1."""
    points = points.astype(np.float64)
    upper, lower = _pairs(points.shape[-1])
    products = points[..., upper] * points[..., lower]
    return np.concatenate([products, points, np.ones((*points.shape[:-1], 1))], axis=-1)


def _logsumexp(values: np.ndarray) -> np.ndarray:
    """[G, K, N] -> [G, N], over the components (the middle axis, so that numpy reduces whole
    rows at a time rather than K numbers at a time)."""
    peak = values.max(axis=1)
    return peak + np.log(np.exp(values - peak[:, None]).sum(axis=1))


def fit_mixtures(samples: list[np.ndarray], components: int, reg_covar: float,
                 tol: float = EM_TOL, max_rounds: int = EM_MAX_ROUNDS) -> Mixtures:
    """One mixture of `components` full-covariance Gaussians per [N_g, D] array of `samples`
    (each at least `components` rows), fitted together; a mixture that has converged drops out
    of the rounds that the others still need."""
    points, valid = _padded(samples)
    labels = _kmeans_labels(points, valid, components)
    point_features = features(points)
    counts = valid.sum(1)
    members = _one_hot(labels, valid, components, np.float64)
    means, covariances, weights = _m_step(point_features, members, counts, reg_covar)
    coefficients = _coefficients(means, covariances, weights)
    previous = np.full(len(samples), -np.inf)
    active = np.arange(len(samples))  # the mixtures still being fitted
    rows, columns = point_features, np.ascontiguousarray(point_features.transpose(0, 2, 1))
    for _ in range(max_rounds):
        joint = coefficients[active] @ columns  # [A, K, N]: log(weight N(x)) of each component
        peak = joint.max(axis=1)
        shares = np.exp(joint - peak[:, None])
        total = shares.sum(axis=1)
        bound = ((peak + np.log(total)) * valid[active]).sum(1) / counts[active]
        responsibilities = shares * (valid[active] / total)[:, None]
        fitted = _m_step(rows, responsibilities, counts[active], reg_covar)
        for old, new in zip((means, covariances, weights), fitted):
            old[active] = new
        coefficients[active] = _coefficients(*fitted)
        going_on = np.abs(bound - previous[active]) >= tol
        previous[active] = bound
        if not going_on.all():
            active = active[going_on]
            if not len(active):
                break
            rows, columns = rows[going_on], columns[going_on]
    return Mixtures(coefficients, means, covariances, weights)


def _padded(samples: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Arrays of different lengths -> [G, N, D] float32 zero-padded, and [G, N] which rows are real."""
    longest = max(len(sample) for sample in samples)
    points = np.zeros((len(samples), longest, samples[0].shape[1]), np.float32)
    valid = np.zeros((len(samples), longest), bool)
    for index, sample in enumerate(samples):
        points[index, :len(sample)] = sample
        valid[index, :len(sample)] = True
    return points, valid


def _m_step(point_features: np.ndarray, responsibilities: np.ndarray, counts: np.ndarray,
            reg_covar: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Means [G, K, D], covariances [G, K, D, D] (plus reg_covar on the diagonal) and weights
    [G, K] from the points' features [G, N, F], responsibilities [G, K, N] and numbers [G]."""
    moments = responsibilities @ point_features  # [G, K, F]
    dims = _dimensions(moments.shape[-1])
    upper, lower = _pairs(dims)
    mass = moments[..., -1] + EMPTY
    means = moments[..., len(upper):-1] / mass[..., None]
    second = np.empty((*mass.shape, dims, dims))
    second[..., upper, lower] = second[..., lower, upper] = moments[..., :len(upper)] / mass[..., None]
    covariances = second - means[..., :, None] * means[..., None, :] + reg_covar * np.eye(dims)
    return means, covariances, mass / counts[:, None]


@functools.lru_cache(maxsize=8)
def _pairs(dims: int) -> tuple[np.ndarray, np.ndarray]:
    """The index pairs i <= j of `features`' products, in their order."""
    return np.triu_indices(dims)


def _dimensions(width: int) -> int:
    """D from the width of `features`, D (D + 1) / 2 + D + 1."""
    return round(((9 + 8 * (width - 1)) ** 0.5 - 3) / 2)


def _coefficients(means: np.ndarray, covariances: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """[G, K, F]: log(weight N(x | mean, cov)) as coefficients of features(x)."""
    dims = means.shape[-1]
    precisions = np.linalg.inv(covariances)
    _, log_det = np.linalg.slogdet(covariances)
    linear = (precisions @ means[..., None])[..., 0]
    constant = (np.log(weights) - 0.5 * (means * linear).sum(-1) - 0.5 * log_det
                - 0.5 * dims * np.log(2 * np.pi))
    upper, lower = _pairs(dims)
    quadratic = precisions[..., upper, lower] * np.where(upper == lower, -0.5, -1.0)  # x_i x_j twice off the diagonal
    return np.concatenate([quadratic, linear, constant[..., None]], axis=-1)


def _kmeans_labels(points: np.ndarray, valid: np.ndarray, clusters: int) -> np.ndarray:
    """[G, N] cluster of each point after k-means++ and Lloyd's iterations, as scikit-learn's
    `KMeans(clusters, n_init=1, random_state=0)` labels them (an empty cluster keeps its centre
    here, where scikit-learn moves it to a far point; with a few thousand points it does not
    happen)."""
    counts = valid.sum(1)
    centred = points - (points.sum(1) / counts[:, None])[:, None, :]
    centred[~valid] = 0.0
    columns = np.ascontiguousarray(centred.transpose(0, 2, 1))  # [G, D, N]
    squares = (centred ** 2).sum(-1)
    centres = _kmeans_plus_plus(centred, columns, squares, valid, clusters)
    tolerance = KMEANS_TOL * (squares.sum(1) / counts) / centred.shape[-1]
    labels = np.full(valid.shape, -1)
    active = np.arange(len(points))  # the models still iterating, and their arrays below
    columns_, points_, valid_, centres_ = columns, centred, valid, centres
    for _ in range(KMEANS_MAX_ROUNDS):
        assigned = _nearest(columns_, centres_)
        moved = _cluster_means(points_, valid_, assigned, centres_)
        unchanged = ((assigned == labels[active]) | ~valid_).all(1)
        settled = ~unchanged & (((moved - centres_) ** 2).sum((1, 2)) <= tolerance[active])
        labels[active], centres_ = assigned, moved
        if settled.any():  # scikit-learn labels the points once more by the centres it stops at
            labels[active[settled]] = _nearest(columns_[settled], centres_[settled])
        going_on = ~unchanged & ~settled
        if not going_on.all():
            active = active[going_on]
            if not len(active):
                break
            columns_, points_, valid_, centres_ = (
                array[going_on] for array in (columns_, points_, valid_, centres_))
    return labels


def _nearest(columns: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """[G, N] index of each point's ([G, D, N]) nearest centre ([G, K, D]); the first of equally
    near ones, as argmin gives it. Worked out from whole rows of distances (numpy's argmin over
    a short middle axis, and np.where with a scalar, are many times slower)."""
    distances = (centres ** 2).sum(-1)[..., None] - 2 * centres @ columns  # [G, K, N]
    least = distances[:, 0]
    for cluster in range(1, distances.shape[1]):
        least = np.minimum(least, distances[:, cluster])
    nearest = np.zeros(least.shape, np.int8)  # small integers: numpy's fastest arithmetic here
    for cluster in reversed(range(distances.shape[1] - 1)):  # index = first cluster at the least
        nearest = (distances[:, cluster] != least).view(np.int8) * (nearest + np.int8(1))
    return nearest


def _one_hot(labels: np.ndarray, valid: np.ndarray, clusters: int, dtype: type) -> np.ndarray:
    """[G, N] labels -> [G, K, N] membership, zero for padding."""
    return ((labels[:, None] == np.arange(clusters)[:, None]) & valid[:, None]).astype(dtype)


def _cluster_means(points: np.ndarray, valid: np.ndarray, labels: np.ndarray,
                   centres: np.ndarray) -> np.ndarray:
    """The mean of each cluster's points, or its old centre when it has none."""
    members = _one_hot(labels, valid, centres.shape[1], points.dtype)
    sizes = members.sum(2)
    means = (members @ points) / np.maximum(sizes, 1)[..., None]
    return np.where(sizes[..., None] > 0, means, centres)


def _kmeans_plus_plus(points: np.ndarray, columns: np.ndarray, squares: np.ndarray, valid: np.ndarray,
                      clusters: int) -> np.ndarray:
    """[G, K, D] starting centres, chosen as scikit-learn's k-means++ chooses them with
    `random_state=0`: the same draws (they depend only on the number of points) on each model's
    points ([G, N, D], also as columns [G, D, N], with squared norms [G, N])."""
    groups = len(points)
    counts = valid.sum(1)
    first, draws = (np.array(column) for column in zip(*(_kmeans_draws(int(count), clusters) for count in counts)))
    rows = np.arange(groups)
    centres = [points[rows, first]]
    closest = _squared_distances(columns, squares, centres[0][:, None])[:, 0] * valid
    potential = closest.sum(1)
    for step in range(clusters - 1):
        targets = draws[:, step] * potential[:, None]  # [G, trials]
        cumulative = np.cumsum(closest, axis=1)
        candidates = np.stack([np.searchsorted(cumulative[group], targets[group]) for group in rows])
        candidates = np.minimum(candidates, counts[:, None] - 1)
        reach = np.minimum(closest[:, None], _squared_distances(columns, squares, points[rows[:, None], candidates]))
        reach *= valid[:, None]
        best = reach.sum(2).argmin(1)
        potential = reach[rows, best].sum(1)
        closest = reach[rows, best]
        centres.append(points[rows, candidates[rows, best]])
    return np.stack(centres, axis=1)


@functools.lru_cache(maxsize=64)
def _kmeans_draws(count: int, clusters: int) -> tuple[int, np.ndarray]:
    """scikit-learn's k-means++ draws for `count` points with `random_state=0`: the first centre's
    index, and [clusters - 1, trials] uniforms that pick the others (the same for every model of
    `count` points, and most have COLOUR_SAMPLES)."""
    generator = np.random.RandomState(0)
    first = generator.choice(count, p=np.full(count, 1.0 / count))
    return int(first), generator.uniform(size=(clusters - 1, 2 + int(np.log(clusters))))


def _squared_distances(columns: np.ndarray, squares: np.ndarray, others: np.ndarray) -> np.ndarray:
    """[G, M, N] squared distances from others [G, M, D] to points (columns [G, D, N], squared
    norms [G, N])."""
    return np.maximum((others ** 2).sum(-1)[..., None] - 2 * others @ columns + squares[:, None, :], 0.0)
