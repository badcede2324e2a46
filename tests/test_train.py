import math

import pytest
import torch
from sklearn.metrics import roc_auc_score

import sbmm
from sbmm.book.article import SharedBottomMultiTaskModel


def signal_data(n=2000, seed=0):
    """A click that depends on x, a like (only after a click) that depends on x, a play
    time after a click."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    p_click = torch.sigmoid(2 * x[:, 0])
    click = (torch.rand(n, generator=g) < p_click).float()
    like = click * (torch.rand(n, generator=g) < torch.sigmoid(2 * x[:, 1])).float()
    play_time = click * (3 + x[:, 2])
    return sbmm.Batch(
        {"x": x},
        {"click": click, "like": like, "play_time": play_time},
        {"p_click": p_click},
    )


def build(towers, seed=0):
    sbmm.seed_everything(seed)
    return sbmm.SharedBottom([sbmm.Dense("x", 6)], towers, bottom=(16, 8))


def test_fit_records_every_objective_and_learns(two_scene_towers):
    train, valid = signal_data(4000).split((0.8, 0.2))
    model = build(two_scene_towers)
    history = sbmm.fit(
        model, train, valid, epochs=8, batch_size=64, lr=3e-3, progress=False
    )
    assert history.epochs == 8
    assert (
        set(history.train_loss)
        == set(history.valid_loss)
        == {"total", "click", "like", "play_time"}
    )
    assert all(len(v) == 8 for v in history.train_loss.values())
    assert history.train_loss["total"][-1] < 0.5 * history.train_loss["total"][0]
    assert history.valid_metrics[-1]["click"]["auc"] > 0.75
    truth_auc = roc_auc_score(valid.labels["click"], valid.truth["p_click"])
    assert history.valid_metrics[-1]["click"]["auc"] > truth_auc - 0.03


def test_same_seed_same_result_and_another_seed_differs(two_scene_towers):
    data = signal_data(500)
    runs = [
        sbmm.fit(
            build(two_scene_towers, s),
            data,
            epochs=2,
            batch_size=50,
            seed=s,
            progress=False,
        )
        for s in (1, 1, 2)
    ]
    assert runs[0].train_loss == runs[1].train_loss
    assert runs[0].train_loss != runs[2].train_loss


def test_evaluate_scores_masked_objectives_on_admitted_samples_only(two_scene_towers):
    data = signal_data(400)
    model = build(two_scene_towers)
    metrics = sbmm.evaluate(model, data)
    clicked = data.labels["click"] == 1
    assert metrics["like"]["n"] == int(clicked.sum()) and metrics["click"]["n"] == 400
    logits = sbmm.predict(model, data)["like"][clicked]
    assert math.isclose(
        metrics["like"]["auc"],
        roc_auc_score(data.labels["like"][clicked], logits),
        rel_tol=1e-9,
    )
    residual = (sbmm.predict(model, data)["play_time"] - data.labels["play_time"])[
        clicked
    ]
    assert math.isclose(
        metrics["play_time"]["rmse"],
        float(residual.double().pow(2).mean().sqrt()),
        rel_tol=1e-5,
    )
    assert math.isclose(
        metrics["play_time"]["loss"], float(residual.pow(2).mean()), rel_tol=1e-5
    )


def test_predict_in_batches_equals_one_pass(two_scene_towers):
    data = signal_data(300)
    model = build(two_scene_towers)
    whole, pieces = sbmm.predict(model, data), sbmm.predict(model, data, batch_size=7)
    assert all(torch.allclose(whole[k], pieces[k], atol=1e-6) for k in whole)


def test_divergence_raises_naming_the_objective():
    data = signal_data(200)
    data.labels["play_time"] = data.labels["play_time"] * 1e30
    model = build([sbmm.Tower("t", [sbmm.Objective("play_time", "regression")])])
    with pytest.raises(FloatingPointError, match="play_time"):
        sbmm.fit(model, data, epochs=3, lr=1.0, progress=False)


def test_bad_arguments_raise(two_scene_towers):
    data = signal_data(50)
    with pytest.raises(TypeError, match="SharedBottom"):
        sbmm.fit(SharedBottomMultiTaskModel(6, 8, 8, 8, 1, 1), data)
    with pytest.raises(TypeError, match="Batch"):
        sbmm.fit(build(two_scene_towers), {"x": data.features["x"]})
    with pytest.raises(ValueError, match="epochs"):
        sbmm.fit(build(two_scene_towers), data, epochs=0)
    with pytest.raises(ValueError, match="batch_size"):
        sbmm.fit(build(two_scene_towers), data, batch_size=0)
    bad = sbmm.Batch(data.features, {**data.labels, "like": data.labels["like"] + 1})
    with pytest.raises(ValueError, match="'like'"):
        sbmm.fit(build(two_scene_towers), data, bad, progress=False)


def test_callbacks_see_every_step_with_live_losses(two_scene_towers):
    data = signal_data(100)
    model = build(two_scene_towers)
    seen = []

    def record(step, m, losses):
        assert m is model and set(losses) == {"click", "like", "play_time"}
        (grad,) = torch.autograd.grad(
            losses["click"], [model.bottom[0].weight], retain_graph=True
        )
        seen.append((step, float(grad.abs().sum())))

    sbmm.fit(model, data, epochs=2, batch_size=30, progress=False, callbacks=[record])
    assert [s for s, _ in seen] == list(
        range(8)
    )  # 4 steps per epoch (30, 30, 30, 10), 2 epochs
    assert all(g > 0 for _, g in seen)


def test_keep_best_ends_with_the_weights_of_the_lowest_validation_loss(
    two_scene_towers,
):
    train, valid = signal_data(300).split(
        (0.5, 0.5)
    )  # a small training set and a high rate: it overfits
    kwargs = dict(batch_size=16, lr=3e-2, seed=3, progress=False)
    history = sbmm.fit(
        kept := build(two_scene_towers),
        train,
        valid,
        epochs=12,
        keep_best=True,
        **kwargs,
    )
    totals = history.valid_loss["total"]
    assert (
        history.best_epoch == 1 + totals.index(min(totals)) and history.best_epoch < 12
    )
    sbmm.fit(
        stopped := build(two_scene_towers),
        train,
        valid,
        epochs=history.best_epoch,
        **kwargs,
    )
    a, b = sbmm.predict(kept, valid), sbmm.predict(stopped, valid)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (
        sbmm.fit(build(two_scene_towers), train, valid, epochs=2, **kwargs).best_epoch
        is None
    )
    with pytest.raises(ValueError, match="keep_best.*valid"):
        sbmm.fit(
            build(two_scene_towers), train, epochs=2, keep_best=True, progress=False
        )


def test_fit_and_predict_check_ids_once_per_data_set_naming_the_feature():
    towers = [sbmm.Tower("t", [sbmm.Objective("click")], hidden=(4,))]
    model = sbmm.SharedBottom(
        [sbmm.Categorical("item", vocab_size=5, dim=2)], towers, bottom=(4,)
    )
    good = sbmm.Batch(
        {"item": torch.arange(10) % 5}, {"click": (torch.arange(10) % 2).float()}
    )
    bad = sbmm.Batch(
        {"item": torch.arange(10)}, {"click": (torch.arange(10) % 2).float()}
    )
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="'item' has ids in \\[0, 9\\]"):
        sbmm.fit(
            model, good, bad, epochs=1, progress=False
        )  # the validation data is checked before training
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))
    with pytest.raises(ValueError, match="'item'"):
        sbmm.predict(model, bad)


def test_options_are_checked_once_naming_the_option_and_value():
    for options, error, match in [
        ({"epochs": 1.5}, ValueError, "epochs must be an integer >= 1, got 1.5"),
        ({"batch_size": -2}, ValueError, "batch_size must be .* got -2"),
        ({"lr": float("nan")}, ValueError, "lr must be a finite number > 0, got nan"),
        ({"precision": "fp16"}, ValueError, "precision .* got 'fp16'"),
        ({"keep_best": "yes"}, TypeError, "keep_best must be True or False, got 'yes'"),
        ({"optimizer": "adam"}, TypeError, "optimizer must be a function"),
        (
            {"weight_decay": 0.1, "optimizer": torch.optim.SGD},
            ValueError,
            "weight_decay=0.1 is for the default optimiser",
        ),
    ]:
        with pytest.raises(error, match=match):
            sbmm.train.TrainSpec(**options)
    spec = sbmm.train.TrainSpec(keep_best=True)
    assert spec.rule == sbmm.EarlyStopping(patience=None)  # keep_best alone: the total
    assert sbmm.train.TrainSpec().rule is None


def test_a_last_batch_of_one_row_is_refused_for_batch_norm_before_training():
    data = signal_data(65)  # 65 = 2 × 32 + 1
    towers = [sbmm.Tower("t", [sbmm.Objective("click")], hidden=(4,))]
    sbmm.seed_everything(0)
    model = sbmm.SharedBottom([sbmm.Dense("x", 6)], towers, (8,), batch_norm=True)
    before = [p.clone() for p in model.parameters()]
    message = "batch_size=32 over 65 training rows leaves a batch of one row.* e.g. 31"
    with pytest.raises(ValueError, match=message):
        sbmm.fit(model, data, epochs=1, batch_size=32, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))
    sbmm.fit(model, data, epochs=1, batch_size=31, progress=False)  # 2 × 31 + 3
    plain = sbmm.SharedBottom([sbmm.Dense("x", 6)], towers, (8,))
    sbmm.fit(plain, data, epochs=1, batch_size=32, progress=False)  # no batch norm
