"""`sweep_lr`: a validation score per learning rate with its interval over seeds, and
no best value named on the edge of the grid."""

import numpy as np
import pytest
import torch

import sbmm
from sbmm.train import sweep_lr

SEEDS = (0, 1, 2)
FIT = {"epochs": 3, "batch_size": 64, "device": "cpu", "progress": False}


@pytest.fixture(scope="module")
def task():
    """(train, valid): a click that depends on x."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1200, 4, generator=g)
    click = (torch.rand(1200, generator=g) < torch.sigmoid(2 * x[:, 0])).float()
    return sbmm.Batch({"x": x}, {"click": click}).split((0.5, 0.5))


def build():
    towers = [sbmm.Tower("t", [sbmm.Objective("click")], hidden=(8,))]
    return sbmm.SharedBottom([sbmm.Dense("x", 4)], towers, bottom=(16,))


@pytest.fixture(scope="module")
def sweep(task):
    train, valid = task
    with pytest.warns(sbmm.train.NotConverged):  # 3 epochs at 1e-4 still improve
        return sweep_lr(build, train, valid, lrs=[1, 1e-2, 1e-4], seeds=SEEDS, **FIT)


def test_a_best_inside_the_grid_is_named_with_its_interval(sweep):
    assert sweep.lrs == (1e-4, 1e-2, 1)  # sorted
    assert sweep.scores.shape == (3, len(SEEDS))
    best = [min(h.valid_loss["total"]) for h in sweep.runs[1].histories]
    assert sweep.scores[1].tolist() == best  # each replica's best validation total
    assert sweep.best == 1e-2 and np.argmin(sweep.means) == 1
    low, high = sweep.intervals.T
    assert np.all(low <= sweep.means) and np.all(sweep.means <= high)
    assert np.all(low < high)
    assert set(sweep.converged()) == set(sweep.lrs)
    assert set(sweep.converged()[1e-2]) == set(SEEDS)
    assert [row["lr"] for row in sweep.table()] == list(sweep.lrs)


def test_a_best_on_the_edge_is_refused_naming_the_end(task):
    train, valid = task
    low = sweep_lr(build, train, valid, lrs=[1e-5, 3e-5, 1e-4], seeds=(0, 1), **FIT)
    with pytest.raises(ValueError, match=r"lr=0.0001, the highest .* above 0.0001"):
        _ = low.best  # the loss still falls faster at the top of the grid
    high = sweep_lr(build, train, valid, lrs=[3, 10, 30], seeds=(0, 1), **FIT)
    with pytest.raises(ValueError, match=r"lr=3, the lowest .* below 3"):
        _ = high.best

    def auc(model, history):
        return history.valid_metrics[-1]["click"]["auc"]

    grid = {"lrs": [1e-5, 1e-4, 1e-3], "seeds": (0, 1), **FIT, "epochs": 1}
    worse = sweep_lr(build, train, valid, score=auc, higher_is_better=True, **grid)
    assert np.argmax(worse.means) == 2  # a higher AUC at the higher rate
    with pytest.raises(ValueError, match=r"lr=0.001, the highest .* above 0.001"):
        _ = worse.best
    flipped = sweep_lr(build, train, valid, score=lambda m, h: -auc(m, h), **grid)
    with pytest.raises(ValueError, match=r"lr=0.001, the highest"):
        _ = flipped.best


def test_a_bad_grid_is_refused_before_training(task):
    train, valid = task
    for lrs, match in [
        ([1e-3, 1e-2], "at least 3 distinct"),
        ([1e-3, 1e-3, 1e-2], "at least 3 distinct"),
        ([1e-3, 0, 1e-2], "finite numbers > 0"),
    ]:
        with pytest.raises(ValueError, match=match):
            sweep_lr(build, train, valid, lrs=lrs, seeds=SEEDS, **FIT)
    with pytest.raises(ValueError, match="at least 2 seeds"):
        sweep_lr(build, train, valid, lrs=[1e-3, 1e-2, 1e-1], seeds=(0,), **FIT)
