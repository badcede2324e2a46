"""Convergence made visible: each objective's best validation epoch, whether it
converged, and one `NotConverged` warning for runs still improving at the end."""

import warnings

import pytest
import torch

import sbmm
from sbmm.train import History, NotConverged


def history(**valid_loss):
    epochs = len(next(iter(valid_loss.values())))
    return History(
        valid_loss=valid_loss, valid_metrics=[{}] * epochs, seconds=[0.0] * epochs
    )


def test_best_epochs_and_converged_read_each_objectives_own_validation_loss():
    h = history(total=[3.0, 2.0, 2.5, 2.6], a=[3.0, 2.9, 2.8, 2.7], b=[1.0, 1.0, 2, 3])
    assert h.best_epochs == {"total": 2, "a": 4, "b": 1}  # the first on a tie
    assert h.converged() == {"total": True, "a": False, "b": True}  # patience 2
    assert h.converged(patience=3) == {"total": False, "a": False, "b": True}
    h.patience = 3  # the run's early-stopping patience is the default
    assert h.converged() == {"total": False, "a": False, "b": True}
    h.stopped = True  # early stopping fired: the run finished by its rule
    assert all(h.converged().values())
    nan = history(total=[float("nan"), 2.0, float("nan")])
    assert nan.best_epochs == {"total": 2}
    with pytest.raises(ValueError, match="patience must be an integer >= 1, got 0"):
        h.converged(patience=0)
    with pytest.raises(ValueError, match="needs a run with validation data"):
        History(train_loss={"total": [1.0]}, seconds=[0.0]).converged()


def data(n=1200, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    click = (torch.rand(n, generator=g) < torch.sigmoid(2 * x[:, 0])).float()
    return sbmm.Batch({"x": x}, {"click": click}).split((0.5, 0.5))


def model():
    sbmm.seed_everything(0)
    towers = [sbmm.Tower("t", [sbmm.Objective("click")], hidden=(8,))]
    return sbmm.SharedBottom([sbmm.Dense("x", 4)], towers, bottom=(16,))


def test_a_run_still_improving_warns_once_naming_its_objectives():
    train, valid = data()
    with pytest.warns(NotConverged) as caught:
        h = sbmm.fit(model(), train, valid, epochs=3, lr=1e-3, progress=False)
    assert len(caught) == 1
    assert h.best_epochs == {"total": 3, "click": 3}  # a low rate: still improving
    assert "'total', 'click'" in str(caught[0].message)
    assert h.converged() == {"total": False, "click": False}
    assert not h.stopped and h.patience is None


def test_a_run_early_stopping_ended_is_converged_and_does_not_warn():
    train, valid = data()
    rule = sbmm.EarlyStopping(patience=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotConverged)
        h = sbmm.fit(model(), train, valid, epochs=100, lr=0.1, early_stopping=rule,
                     batch_size=32, progress=False)  # fmt: skip
    assert h.stopped and h.patience == 2 and h.epochs < 100
    assert h.epochs - h.best_epochs["total"] == 2 and all(h.converged().values())


def test_a_run_without_validation_reports_nothing():
    train, _ = data()
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotConverged)
        h = sbmm.fit(model(), train, epochs=2, progress=False)
    assert h.best_epochs == {}


def test_replicas_still_improving_warn_once_naming_objectives_and_seeds():
    train, valid = data()
    with pytest.warns(NotConverged) as caught:
        r = sbmm.fit_replicas(
            model, train, valid, seeds=(4, 5, 6), epochs=3, lr=1e-3, progress=False
        )
    assert len(caught) == 1
    assert "'click' at all 3 seeds" in str(caught[0].message)
    assert all(not any(c.values()) for c in r.converged().values())
