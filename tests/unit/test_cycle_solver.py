"""The block-diagonal solver behind cost cycles (kernel/cycles.py, §9.4).

Expected values come from a plain dense solve of the whole matrix with numpy, or from a hand
calculation: a 2-site ring where each site passes half of its value to the other.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csc_matrix

from invclose.kernel.cycles import DENSE_MAX, solve_block_diagonal


def _block_system(sizes: list[int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """I - A for a random A with each block passing < 90 % of its value on, and its labels."""
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    dense = np.eye(n)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    start = 0
    for size in sizes:
        block = rng.uniform(0.0, 1.0, (size, size)) * (rng.uniform(size=(size, size)) < 0.3)
        block *= 0.9 / max(1.0, block.sum(axis=0).max())
        dense[start : start + size, start : start + size] -= block
        start += size
    return dense, labels


def test_a_two_site_ring_by_hand() -> None:
    # x1 = 100 + x2 / 2, x2 = 40 + x1 / 2  =>  x1 = 160, x2 = 120
    system = csc_matrix(np.array([[1.0, -0.5], [-0.5, 1.0]]))
    x = solve_block_diagonal(system, np.array([100.0, 40.0]), np.array([7, 7]))
    assert np.allclose(x, [160.0, 120.0], rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_equals_a_dense_solve_for_small_and_large_blocks(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    sizes = [1, 2, 3, 3, 3, 17, DENSE_MAX, DENSE_MAX + 1, 2 * DENSE_MAX + 5, 2, 1]
    rng.shuffle(sizes)
    dense, labels = _block_system(sizes, seed)
    rhs = rng.uniform(-1000, 1000, dense.shape[0])
    # Unknowns of one block need not be contiguous: permute them.
    perm = rng.permutation(dense.shape[0])
    permuted = dense[np.ix_(perm, perm)]
    x = solve_block_diagonal(csc_matrix(permuted), rhs[perm], labels[perm])
    expected = np.linalg.solve(dense, rhs)[perm]
    assert np.allclose(x, expected, rtol=1e-10, atol=1e-8)


@pytest.mark.parametrize("size", [3, DENSE_MAX + 3])
def test_a_singular_block_is_nan_and_the_others_are_still_solved(size: int) -> None:
    # Blocks of the sizes 2, `size`, 2 and `size` + 1 (dense or sparse alike); the second is
    # value that only circulates: it passes all of its value around a ring (I - P, singular).
    sizes = [2, size, 2, size + 1]
    dense, labels = _block_system(sizes, 5)
    ring = np.eye(size) - np.roll(np.eye(size), 1, axis=0)
    dense[2 : 2 + size, 2 : 2 + size] = ring
    rhs = np.arange(1.0, dense.shape[0] + 1.0)
    x = solve_block_diagonal(csc_matrix(dense), rhs, labels)
    singular = labels == 1
    assert np.isnan(x[singular]).all()
    # Every other block equals a plain dense solve of that block alone.
    for label in (0, 2, 3):
        block = np.flatnonzero(labels == label)
        expected = np.linalg.solve(dense[np.ix_(block, block)], rhs[block])
        assert np.allclose(x[block], expected, rtol=1e-10, atol=1e-8)


def test_an_entry_linking_two_blocks_is_refused() -> None:
    dense, labels = _block_system([2, 2], 1)
    dense[0, 3] = -0.1
    with pytest.raises(ValueError, match="links two cycles"):
        solve_block_diagonal(csc_matrix(dense), np.ones(4), labels)


def test_a_large_nearly_closed_ring_falls_back_to_the_exact_lu() -> None:
    # A ring of DENSE_MAX + 10 receipts, each passing 99.99 % of its value to the next: the
    # fixed-point sweeps would need about 200,000 passes, so the block goes to the sparse LU
    # and must still equal a dense solve. By hand for a ring of n with keep k and rhs 1
    # everywhere, every unknown is 1 / (1 - k).
    size, keep = DENSE_MAX + 10, 0.9999
    dense = np.eye(size) - keep * np.roll(np.eye(size), 1, axis=0)
    x = solve_block_diagonal(csc_matrix(dense), np.ones(size), np.zeros(size, np.int64))
    assert np.allclose(x, 1.0 / (1.0 - keep), rtol=1e-9, atol=0)


def test_large_blocks_that_leak_value_are_swept_to_the_dense_solution() -> None:
    # Two large rings that pass on half of their value: the sweeps converge (to 2 x rhs for
    # a constant rhs, by hand: x = 1 + x / 2) and agree with a dense solve.
    size = DENSE_MAX + 5
    ring = np.eye(size) - 0.5 * np.roll(np.eye(size), 1, axis=0)
    dense = np.block([[ring, np.zeros((size, size))], [np.zeros((size, size)), ring]])
    labels = np.repeat([3, 9], size)
    x = solve_block_diagonal(csc_matrix(dense), np.ones(2 * size), labels)
    assert np.allclose(x, 2.0, rtol=0, atol=1e-9)
