"""Bad input is stopped before any weight moves, with an error that names what is
wrong."""

import math

import pytest
import torch

import sbmm
from sbmm.validation import split_bounds
from sbmm.losses import check_labels
from sbmm.weighting import DWA, GradNorm, PCGrad, Static, Uncertainty


def feed_like(n=400, seed=0):
    """Dense x, a click, a like and a play time that exist only after a click
    (NaN elsewhere, as a real table holds them)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    click = (torch.rand(n, generator=g) < torch.sigmoid(2 * x[:, 0])).float()
    like = (torch.rand(n, generator=g) < torch.sigmoid(2 * x[:, 1])).float()
    play_time = 3 + x[:, 2].abs()
    nan = torch.full((n,), math.nan)
    labels = {
        "click": click,
        "like": torch.where(click > 0, like, nan),
        "play_time": torch.where(click > 0, play_time, nan),
    }
    return sbmm.Batch({"x": x}, labels)


def towers(space="masked", like_weight=None):
    like = sbmm.Objective("like", given="click", space=space, sample_weight=like_weight)
    return [
        sbmm.Tower("scene1", [sbmm.Objective("click")], hidden=(8,)),
        sbmm.Tower("scene2", [like], hidden=(8,), weight=0.5),
    ]


def model_of(declared=None, seed=0):
    sbmm.seed_everything(seed)
    return sbmm.SharedBottom([sbmm.Dense("x", 6)], declared or towers(), bottom=(16, 8))


def weights_of(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_untouched(model, before):
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# One owner: which samples an objective admits.


def test_given_in_its_own_space_is_the_mask_of_what_it_is_given():
    assert sbmm.Objective("like", given="click").mask == "click"
    assert sbmm.Objective("like", given="click", space="entire").mask is None
    parent = sbmm.Objective("click", label="clicked")
    with pytest.raises(ValueError, match="'like'.*'clicked'"):
        sbmm.SharedBottom(
            [sbmm.Dense("x", 6)],
            [sbmm.Tower("t", [parent, sbmm.Objective("like", given="click")])],
        )


def test_dataset_statistics_count_only_the_rows_a_given_objective_admits():
    data = feed_like()
    data.labels["like"] = torch.nan_to_num(data.labels["like"])
    value = sbmm.SampleWeight("x_value", normalise="dataset_mean")
    data.features["x_value"] = data.features["x"][:, 0].abs()
    like = sbmm.Objective("like", given="click", sample_weight=value).with_statistics(
        data
    )
    clicked = data.labels["click"] > 0
    expected = float(data.features["x_value"][clicked].double().mean())
    assert math.isclose(like.sample_weight.normalise, expected, rel_tol=1e-6)
    everyone = float(data.features["x_value"].double().mean())
    # the test can tell them apart
    assert not math.isclose(expected, everyone, rel_tol=1e-3)


def test_nan_labels_where_no_loss_reads_them_are_accepted_and_the_loss_is_finite():
    data = feed_like()
    for space in ("masked", "entire"):
        model = model_of(towers(space))
        check_labels(model.tower_specs, data)
        losses = sbmm.objective_losses(model.tower_specs, model(data.features), data)
        assert all(torch.isfinite(loss) for loss in losses.values()), space
        history = sbmm.fit(model, data, data, epochs=1, batch_size=64, progress=False)
        assert math.isfinite(history.valid_loss["like"][0])
        assert sbmm.evaluate(model, data)["like"]["n"] == int(
            data.labels["click"].sum()
        )


def test_a_nan_label_where_the_loss_reads_it_is_refused_naming_the_objective():
    data = feed_like()
    clicked = int(torch.nonzero(data.labels["click"])[0])
    data.labels["like"][clicked] = math.nan
    for space in ("masked", "entire"):
        model = model_of(towers(space))
        before = weights_of(model)
        with pytest.raises(ValueError, match="train: objective 'like'.*NaN"):
            sbmm.fit(model, data, epochs=1, progress=False)
        assert_untouched(model, before)


# Features: checked on train and valid before the first step, and by predict and
# evaluate.


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_dense_feature_stops_fit_predict_and_evaluate(bad):
    data = feed_like()
    data.features["x"][7, 3] = bad
    model = model_of()
    before = weights_of(model)
    for call in (
        lambda: sbmm.fit(model, data, epochs=1, progress=False),
        lambda: sbmm.fit(model, feed_like(), data, epochs=1, progress=False),
        lambda: sbmm.predict(model, data),
        lambda: sbmm.evaluate(model, data),
    ):
        with pytest.raises(ValueError, match="dense feature 'x' holds 1 NaN or inf"):
            call()
    assert_untouched(model, before)


def test_validation_data_missing_a_feature_is_refused_before_training():
    valid = feed_like()
    del valid.features["x"]
    model = model_of()
    before = weights_of(model)
    with pytest.raises(ValueError, match="valid: feature 'x' is missing"):
        sbmm.fit(model, feed_like(), valid, epochs=1, progress=False)
    assert_untouched(model, before)


def test_a_feature_name_with_a_dot_is_refused_naming_it():
    with pytest.raises(ValueError, match="feature 'user.id'.*'.'"):
        sbmm.InputLayer([sbmm.Categorical("user.id", 10)])


# Options.


@pytest.mark.parametrize(
    "option, value",
    [
        ("epochs", True),
        ("epochs", 0),
        ("batch_size", True),
        ("batch_size", 2.0),
        ("lr", math.inf),
        ("lr", math.nan),
        ("lr", 0.0),
        ("lr", -1e-3),
    ],
)
def test_bad_options_are_refused_naming_the_option(option, value):
    model = model_of()
    before = weights_of(model)
    with pytest.raises(ValueError, match=option):
        sbmm.fit(model, feed_like(), **{option: value}, progress=False)
    assert_untouched(model, before)


def test_divergence_leaves_the_weights_from_before_the_failed_epoch():
    data = feed_like()
    data.labels["play_time"] = torch.nan_to_num(data.labels["play_time"]) * 1e30
    declared = [
        sbmm.Tower("t", [sbmm.Objective("play_time", "regression", mask="click")])
    ]
    model = model_of(declared)
    before = weights_of(model)
    with pytest.raises(FloatingPointError, match="epoch 1: the loss of 'play_time'"):
        sbmm.fit(model, data, epochs=2, progress=False)
    assert_untouched(model, before)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_metrics_refuse_non_finite_predictions_naming_the_objective():
    objective = sbmm.Objective("click")
    labels = {"click": torch.tensor([0.0, 1.0, 1.0])}
    with pytest.raises(ValueError, match="'click'.*NaN"):
        sbmm.objective_metrics(objective, torch.tensor([0.0, math.nan, 1.0]), labels)


# One owner: how losses combine, in training and validation alike.


@pytest.mark.parametrize("strategy", [Static, Uncertainty, DWA, GradNorm])
def test_train_and_valid_totals_are_the_strategys_weighted_sum(strategy):
    data = feed_like()
    model = model_of()
    weighting = strategy()
    history = sbmm.fit(
        model, data, data, epochs=3, batch_size=50, progress=False, weighting=weighting
    )
    for epoch in range(3):
        weights = {name: history.weights[name][epoch] for name in ("click", "like")}
        expected = sum(
            w * history.valid_loss[name][epoch] for name, w in weights.items()
        )
        assert math.isclose(history.valid_loss["total"][epoch], expected, rel_tol=1e-5)


def test_static_given_weights_act_inside_their_tower():
    model = model_of()
    weighting = Static({"like": 3.0})
    weighting.bind(model)
    assert weighting.weights() == {"click": 1.0, "like": 0.5 * 3.0}


def test_strategies_say_whether_they_take_gradients_themselves():
    assert [s.takes_gradients for s in (Static(), Uncertainty(), DWA())] == [False] * 3
    assert GradNorm.takes_gradients and PCGrad.takes_gradients


@pytest.mark.parametrize(
    "fractions, error, match",
    [
        ((0.8, float("nan"), 0.1), ValueError, "nan"),
        ((0.8, "a", 0.1), ValueError, "'a'"),
        ("0.8", TypeError, "'0.8'"),
    ],
)
def test_split_fractions_that_are_not_numbers_are_named(fractions, error, match):
    with pytest.raises(error, match=match):
        split_bounds(100, fractions)


def test_a_width_that_is_not_a_sequence_is_named():
    with pytest.raises(TypeError, match="bottom widths .* got 32"):
        sbmm.SharedBottom([sbmm.Dense("x", 6)], towers(), bottom=32)
    with pytest.raises(TypeError, match="expert widths .* got 16"):
        sbmm.MMoE([sbmm.Dense("x", 6)], towers(), expert=16)
