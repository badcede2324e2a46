import numpy as np
import pytest

from sbmm import pareto


def test_one_point_is_its_rectangle():
    assert pareto.hypervolume([[0.5, 0.4]]) == pytest.approx(0.2)
    assert pareto.hypervolume([[3.0, 2.0]], reference=(1.0, 1.0)) == pytest.approx(2.0)


def test_staircase_of_three_points():
    # Union of the rectangles [0, 3]×[0, 1], [0, 2]×[0, 2], [0, 1]×[0, 3]:
    # 3 + 2·(2 − 1) + 1·(3 − 2) = 6, whatever the order the points come in.
    points = [[1.0, 3.0], [3.0, 1.0], [2.0, 2.0]]
    assert pareto.hypervolume(points) == pytest.approx(6.0)
    assert pareto.hypervolume(points[::-1]) == pytest.approx(6.0)


def test_dominated_points_add_nothing():
    front = [[3.0, 1.0], [1.0, 3.0]]  # 3 + 1·2 = 5
    dominated = [[2.0, 1.0], [0.5, 0.5], [1.0, 3.0], [3.0, 0.2]]
    assert pareto.hypervolume(front) == pytest.approx(5.0)
    assert pareto.hypervolume(front + dominated) == pytest.approx(5.0)
    mask = pareto.non_dominated(front + dominated)
    # the copy of (1, 3) is kept: equal points do not dominate each other
    assert mask.tolist() == [True, True, False, False, True, False]


def test_points_below_the_reference_add_nothing():
    assert pareto.hypervolume([[-0.1, 0.9], [0.9, -0.2]]) == 0.0
    assert pareto.hypervolume([[-0.1, 0.9], [0.5, 0.5]]) == pytest.approx(0.25)


def test_a_better_frontier_has_a_larger_hypervolume():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.1, 0.9, (5, 2))
    assert pareto.hypervolume(base + 0.05) > pareto.hypervolume(base)


def test_hypervolume_per_seed():
    fronts = np.array([[[1.0, 1.0], [0.5, 0.5]], [[2.0, 1.0], [1.0, 2.0]]])
    assert pareto.hypervolumes(fronts).tolist() == pytest.approx([1.0, 3.0])


@pytest.mark.parametrize(
    "points",
    [[1.0, 2.0], [[1.0, 2.0, 3.0]], np.zeros((0, 2)), [[np.nan, 1.0]], [[np.inf, 1]]],
)
def test_bad_points_refused(points):
    with pytest.raises(ValueError, match="points"):
        pareto.hypervolume(points)


@pytest.mark.parametrize("reference", [(0.0,), (0.0, np.nan), [[0.0, 0.0]]])
def test_bad_reference_refused(reference):
    with pytest.raises(ValueError, match="reference"):
        pareto.hypervolume([[1.0, 1.0]], reference)


def test_fronts_must_be_three_dimensional():
    with pytest.raises(ValueError, match="seeds, n, 2"):
        pareto.hypervolumes([[1.0, 1.0]])
