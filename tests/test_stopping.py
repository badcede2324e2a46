"""Early stopping (`EarlyStopping` in `fit`), weight decay, and what `evaluate` and
`predict_joint` say about conditional objectives."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import sbmm
from sbmm import EarlyStopping, Objective, Tower


def data(n=3000, seed=0):
    """Two binary tasks on 4 dense inputs; like is observed only after a click."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    click = (torch.rand(n, generator=g) < torch.sigmoid(x[:, 0] * 2)).float()
    like = (torch.rand(n, generator=g) < torch.sigmoid(x[:, 1] * 2)).float() * click
    return sbmm.Batch({"x": x}, {"click": click, "like": like}).split((0.5, 0.25, 0.25))


FEATURES = [sbmm.Dense("x", 4)]


def model(space="entire"):
    torch.manual_seed(0)
    towers = [
        Tower("click", [Objective("click")]),
        Tower("like", [Objective("like", given="click", space=space)]),
    ]
    return sbmm.SharedBottom(FEATURES, towers, bottom=(16,))


def test_a_run_stops_after_patience_epochs_without_improvement_and_keeps_the_best():
    train, valid, _ = data()
    rule = EarlyStopping(patience=2, objective="click", metric="auc")
    m = model()
    history = sbmm.fit(m, train, valid, epochs=200, lr=0.05, early_stopping=rule,
                       progress=False)  # fmt: skip
    aucs = [epoch["click"]["auc"] for epoch in history.valid_metrics]
    assert history.epochs < 200  # it stopped
    best = history.best_epoch
    assert aucs[best - 1] == max(aucs)
    assert history.epochs == best + 2  # two epochs without improvement after the best
    assert all(a <= aucs[best - 1] for a in aucs[best:])
    kept = sbmm.evaluate(m, valid)["click"]["auc"]
    assert kept == pytest.approx(aucs[best - 1], abs=1e-12)  # the best epoch's weights


def test_keep_best_alone_watches_the_total_and_runs_every_epoch():
    train, valid, _ = data()
    history = sbmm.fit(model(), train, valid, epochs=6, lr=0.05, keep_best=True,
                       progress=False)  # fmt: skip
    totals = history.valid_loss["total"]
    assert history.epochs == 6
    assert totals[history.best_epoch - 1] == min(totals)


def test_a_lower_is_better_metric_and_min_delta():
    rule = EarlyStopping(patience=1, objective="click", metric="logloss", min_delta=0.1)
    assert rule.improves(0.5, None) and rule.improves(0.3, 0.5)
    assert not rule.improves(0.45, 0.5)  # better, but by less than min_delta
    auc = EarlyStopping(objective="click", metric="auc")
    assert auc.improves(0.8, 0.7) and not auc.improves(0.6, 0.7)
    assert not auc.improves(math.nan, 0.7) and auc.improves(0.6, math.nan)


@pytest.mark.parametrize(
    "rule, message",
    [
        (EarlyStopping(objective="buy"), "objective 'buy', which the model does not"),
        (EarlyStopping(objective="click", metric="rmse"), "reports loss, auc, logloss"),
    ],
)
def test_a_watched_objective_or_metric_the_model_lacks_is_refused(rule, message):
    train, valid, _ = data()
    m = model()
    before = [p.clone() for p in m.parameters()]
    with pytest.raises(ValueError, match=message):
        sbmm.fit(m, train, valid, early_stopping=rule, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(before, m.parameters()))


def test_bad_rules_and_options_are_refused():
    with pytest.raises(ValueError, match="patience must be an integer >= 1"):
        EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="the total has only a loss"):
        EarlyStopping(metric="auc")
    train, valid, _ = data()
    with pytest.raises(ValueError, match="early_stopping needs validation data"):
        sbmm.fit(model(), train, early_stopping=EarlyStopping(), progress=False)
    with pytest.raises(TypeError, match="must be an sbmm.EarlyStopping"):
        sbmm.fit(model(), train, valid, early_stopping=3, progress=False)
    with pytest.raises(ValueError, match="weight_decay must be a number >= 0"):
        sbmm.fit(model(), train, weight_decay=-1.0, progress=False)


def test_weight_decay_shrinks_the_weights():
    train, _, _ = data()
    norms = {}
    for decay in (0.0, 1.0):  # AdamW: each step scales weights by 1 − lr · decay
        m = model()
        sbmm.fit(m, train, epochs=5, batch_size=64, lr=0.01, weight_decay=decay,
                 progress=False)  # fmt: skip
        norms[decay] = sum(float(p.detach().norm()) for p in m.bottom.parameters())
    assert norms[1.0] < 0.8 * norms[0.0]


@pytest.mark.parametrize("space", ["entire", "masked"])
def test_evaluate_says_which_rows_each_number_covers(space):
    train, _, test = data()
    m = model(space)
    sbmm.fit(m, train, epochs=3, lr=0.05, progress=False)
    result = sbmm.evaluate(m, test)
    clicked = int(test.labels["click"].sum())
    assert result["like"]["n"] == clicked  # the conditional metric: clicked rows
    assert result["like"]["n_loss"] == (len(test) if space == "entire" else clicked)
    assert result["click"]["n"] == result["click"]["n_loss"] == len(test)
    assert "joint_auc" not in result["click"]
    joint = sbmm.predict_joint(m, test)
    assert result["like"]["joint_n"] == len(test)
    target = (test.labels["click"] * test.labels["like"]).numpy()
    expected = roc_auc_score(target, joint["like"].numpy())
    assert result["like"]["joint_auc"] == pytest.approx(expected, abs=1e-6)


def test_joint_predictions_multiply_along_the_chain():
    train, _, test = data()
    m = model()
    sbmm.fit(m, train, epochs=2, lr=0.05, progress=False)
    logits = sbmm.predict(m, test)
    joint = sbmm.predict_joint(m, test)
    p_click, p_like = torch.sigmoid(logits["click"]), torch.sigmoid(logits["like"])
    np.testing.assert_allclose(joint["click"], p_click, rtol=1e-5)
    np.testing.assert_allclose(joint["like"], p_click * p_like, rtol=1e-5)
    assert bool((joint["like"] <= joint["click"]).all())


@pytest.mark.parametrize("watched, rows", [("click", 750), ("like", 0)])
def test_an_auc_over_one_class_is_refused_before_training(watched, rows):
    """Watching an AUC whose validation labels, where they are read, hold one class
    (no click at all; then no like is read either) would watch NaN every epoch."""
    train, valid, _ = data()
    no_click = {"click": torch.zeros(len(valid)), "like": torch.zeros(len(valid))}
    valid = sbmm.Batch(valid.features, no_click)
    m = model(space="masked")
    before = [p.clone() for p in m.parameters()]
    rule = EarlyStopping(objective=watched, metric="auc")
    with pytest.raises(ValueError, match=f"AUC of '{watched}'.* {rows} rows"):
        sbmm.fit(m, train, valid, early_stopping=rule, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(before, m.parameters()))
    loss = EarlyStopping(objective=watched, metric="loss", patience=1)
    sbmm.fit(m, train, valid, epochs=1, early_stopping=loss, progress=False)  # allowed
