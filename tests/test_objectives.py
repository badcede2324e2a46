import math

import pytest
import torch
import torch.nn.functional as F

import sbmm
from sbmm.losses import check_labels, multitask_loss, objective_loss
from sbmm.objectives import check_towers


def test_total_is_tower_weight_times_objective_weight_times_loss(two_scene_batch):
    b = two_scene_batch
    towers = [
        sbmm.Tower("s1", [sbmm.Objective("click", weight=2.0)], weight=3.0),
        sbmm.Tower(
            "s2",
            [
                sbmm.Objective("like", weight=0.5, given="click"),
                sbmm.Objective("play_time", "regression", weight=4.0),
            ],
            weight=0.25,
        ),
    ]
    preds = {k: torch.randn(len(b)) for k in ("click", "like", "play_time")}
    total, losses = multitask_loss(towers, preds, b)
    expected = 3.0 * 2.0 * losses["click"] + 0.25 * (
        0.5 * losses["like"] + 4.0 * losses["play_time"]
    )
    assert torch.allclose(total, expected)
    assert torch.allclose(
        losses["click"],
        F.binary_cross_entropy_with_logits(preds["click"], b.labels["click"]),
    )
    assert torch.allclose(
        losses["play_time"], F.mse_loss(preds["play_time"], b.labels["play_time"])
    )


def test_masked_samples_get_exactly_zero_gradient(two_scene_batch):
    b = two_scene_batch
    logits = torch.randn(len(b), requires_grad=True)
    objective_loss(sbmm.Objective("like", mask="click"), logits, b).backward()
    unclicked = b.labels["click"] == 0
    assert unclicked.any() and (~unclicked).any()
    assert torch.all(logits.grad[unclicked] == 0)
    assert torch.all(logits.grad[~unclicked] != 0)


def test_masked_loss_is_the_mean_over_admitted_samples(two_scene_batch):
    b = two_scene_batch
    logits = torch.randn(len(b))
    keep = b.labels["click"] == 1
    got = objective_loss(sbmm.Objective("like", mask="click"), logits, b)
    assert torch.allclose(
        got, F.binary_cross_entropy_with_logits(logits[keep], b.labels["like"][keep])
    )


def test_a_batch_with_no_admitted_sample_contributes_zero_not_nan(two_scene_batch):
    b = two_scene_batch[two_scene_batch.labels["click"] == 0]
    logits = torch.full((len(b),), float("nan"), requires_grad=True)
    loss = objective_loss(sbmm.Objective("like", mask="click"), logits, b)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(logits.grad == 0)


def test_sample_weights_scale_each_sample_exactly(two_scene_batch):
    b = two_scene_batch
    b.labels["w"] = torch.arange(len(b)).float()
    logits = torch.randn(len(b), requires_grad=True)
    objective_loss(sbmm.Objective("click", sample_weight="w"), logits, b).backward()
    plain = torch.randn(len(b)).copy_(logits.detach()).requires_grad_()
    objective_loss(sbmm.Objective("click"), plain, b).backward()
    assert torch.allclose(logits.grad, plain.grad * b.labels["w"])
    per_sample = F.binary_cross_entropy_with_logits(
        logits.detach(), b.labels["click"], reduction="none"
    )
    got = objective_loss(
        sbmm.Objective("click", sample_weight=lambda batch: 2 * batch.labels["w"]),
        logits.detach(),
        b,
    )
    assert torch.allclose(got, (2 * b.labels["w"] * per_sample).mean())


def test_multi_valued_regression_matches_mse_over_all_values():
    b = sbmm.Batch({}, {"y": torch.randn(5, 3)})
    pred = torch.randn(5, 3)
    assert torch.allclose(
        objective_loss(sbmm.Objective("y", "regression", dim=3), pred, b),
        F.mse_loss(pred, b.labels["y"]),
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(name="x", kind="ranking"), "'x'.*kind.*'ranking'"),
        (dict(name="x", weight=-1.0), "'x'.*weight"),
        (dict(name="x", weight=math.inf), "'x'.*weight"),
        (dict(name="x", kind="binary", dim=2), "'x'.*dim"),
        (dict(name=""), "name"),
    ],
)
def test_bad_objective_declarations_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sbmm.Objective(**kwargs)


def test_bad_tower_declarations_raise():
    with pytest.raises(ValueError, match="'t'.*no objectives"):
        sbmm.Tower("t", [])
    with pytest.raises(ValueError, match="'t'.*hidden"):
        sbmm.Tower("t", [sbmm.Objective("a")], hidden=(0,))
    with pytest.raises(ValueError, match="tower 'scene.1': a name must not contain"):
        sbmm.Tower("scene.1", [sbmm.Objective("a")])
    with pytest.raises(ValueError, match="unique"):
        sbmm.SharedBottom(
            [sbmm.Dense("x")],
            [
                sbmm.Tower("a", [sbmm.Objective("y")]),
                sbmm.Tower("b", [sbmm.Objective("y")]),
            ],
        )


@pytest.mark.parametrize(
    "objective, labels, message",
    [
        (sbmm.Objective("click"), {"like": [0, 1]}, "'click'.*missing"),
        (sbmm.Objective("click"), {"click": [0, 2]}, "'click'.*0 or 1"),
        (sbmm.Objective("t", "regression"), {"t": [1.0, float("nan")]}, "'t'.*NaN"),
        (
            sbmm.Objective("like", mask="clik"),
            {"like": [0, 1], "click": [1, 1]},
            "'like'.*mask 'clik' names no label",
        ),
        (
            sbmm.Objective("like", mask="click"),
            {"like": [0, 1], "click": [0.5, 1]},
            "'like'.*mask",
        ),
        (
            sbmm.Objective("click", sample_weight="w"),
            {"click": [0, 1], "w": [1.0, -1.0]},
            "'click'.*sample weights",
        ),
        (sbmm.Objective("click", sample_weight="v"), {"click": [0, 1]}, "'click'.*'v'"),
    ],
)
def test_bad_labels_raise_naming_the_objective(objective, labels, message):
    batch = sbmm.Batch({}, {k: torch.tensor(v) for k, v in labels.items()})
    with pytest.raises(ValueError, match=message):
        check_labels([sbmm.Tower("t", [objective])], batch)


def test_an_objective_that_follows_another_is_declared_with_given():
    """One spelling: a mask naming the label of a binary objective of the model is
    refused, pointing at `given`; a mask naming any other label is kept."""
    with pytest.raises(ValueError, match="'like' is masked by 'click'.*given='click'"):
        check_towers(
            [
                sbmm.Tower(
                    "t", [sbmm.Objective("click"), sbmm.Objective("like", mask="click")]
                )
            ]
        )
    towers = check_towers(
        [
            sbmm.Tower(
                "t",
                [sbmm.Objective("click"), sbmm.Objective("like", mask="like_seen")],
            )
        ]
    )
    assert towers[0].objectives[1].mask == "like_seen"
    given = sbmm.Objective("like", given="click")
    assert given.mask == "click"  # the same restriction, one spelling


def test_mean_over_batch_divides_the_masked_sum_by_the_batch_size(two_scene_batch):
    b = two_scene_batch
    logits = torch.randn(len(b), requires_grad=True)
    keep = b.labels["click"] == 1
    per_row = F.binary_cross_entropy_with_logits(
        logits[keep], b.labels["like"][keep], reduction="sum"
    )
    got = objective_loss(
        sbmm.Objective("like", mask="click", mean_over="batch"), logits, b
    )
    assert torch.allclose(got, per_row / len(b))
    # its gradient is the admitted mean's, scaled by the admitted share
    got.backward()
    by_batch = logits.grad.clone()
    logits.grad = None
    objective_loss(sbmm.Objective("like", mask="click"), logits, b).backward()
    share = keep.float().mean()
    assert 0 < share < 1
    assert torch.allclose(by_batch, logits.grad * share)


def test_mean_over_batch_counts_every_row_in_evaluation(two_scene_batch):
    b = two_scene_batch
    like = sbmm.Objective("like", given="click", mean_over="batch")
    towers = [sbmm.Tower("t", [sbmm.Objective("click"), like])]
    model = sbmm.SharedBottom([sbmm.Dense("x", 6)], towers, bottom=(8,))
    report = sbmm.evaluate(model, b)
    assert report["like"]["n_loss"] == len(b)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mean_over": "rows"}, "mean_over must be one of .*'rows'"),
        ({"mask": None, "mean_over": "batch"}, "'like'.*counts every row"),
        (
            {"given": "click", "mask": None, "space": "entire", "mean_over": "batch"},
            "'like'.*counts every row",
        ),
    ],
)
def test_mean_over_is_refused_where_it_means_nothing(kwargs, message):
    declaration = {"mask": "click", **kwargs}
    with pytest.raises(ValueError, match=message):
        sbmm.Objective("like", **declaration)
