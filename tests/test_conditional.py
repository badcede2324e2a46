"""Conditional objectives: trained on their own sample space (masked) or on the entire
space (ESMM)."""

import math

import pytest
import torch
import torch.nn.functional as F

import sbmm
from sbmm.conditional import entire_space_logit
from sbmm.losses import objective_losses


def towers(space="entire", play_space="entire"):
    return [
        sbmm.Tower("scene1", [sbmm.Objective("click")], hidden=(8,)),
        sbmm.Tower(
            "scene2",
            [
                sbmm.Objective("like", given="click", space=space),
                sbmm.Objective(
                    "play_time", "regression", given="click", space=play_space
                ),
            ],
            hidden=(8,),
        ),
    ]


def feed_like(n=64, seed=0, click_rate=0.4):
    g = torch.Generator().manual_seed(seed)
    click = (torch.rand(n, generator=g) < click_rate).float()
    like = click * (torch.rand(n, generator=g) < 0.5).float()
    play = click * 10 * torch.rand(n, generator=g)
    return sbmm.Batch(
        {"x": torch.randn(n, 4, generator=g)},
        {"click": click, "like": like, "play_time": play},
    )


def test_masked_conditional_samples_get_exactly_zero_gradient():
    b = feed_like()
    logits = {
        "click": torch.randn(64),
        "like": torch.randn(64, requires_grad=True),
        "play_time": torch.randn(64),
    }
    objective_losses(towers("masked", "masked"), logits, b)["like"].backward()
    unclicked = b.labels["click"] == 0
    assert torch.all(logits["like"].grad[unclicked] == 0) and torch.all(
        logits["like"].grad[~unclicked] != 0
    )


def test_entire_space_loss_is_bce_of_the_product_against_click_and_like():
    b = feed_like()
    logits = {k: torch.randn(64) for k in ("click", "like", "play_time")}
    losses = objective_losses(towers(), logits, b)
    p = torch.sigmoid(logits["click"]) * torch.sigmoid(logits["like"])
    assert torch.allclose(
        losses["like"],
        F.binary_cross_entropy(p, b.labels["click"] * b.labels["like"]),
        atol=1e-5,
    )
    expected_play = torch.sigmoid(logits["click"]) * logits["play_time"]
    assert torch.allclose(
        losses["play_time"], F.mse_loss(expected_play, b.labels["play_time"])
    )


@pytest.mark.parametrize("scale", [0.0, 30.0, 1e4])
def test_entire_space_probability_stays_in_0_1_and_its_loss_is_finite(scale):
    b = feed_like()
    signs = torch.tensor([1.0, -1.0]).repeat(32)
    logits = {
        "click": scale * signs,
        "like": scale * signs.roll(1),
        "play_time": torch.zeros(64),
    }
    for key in logits:
        logits[key].requires_grad_()
    p = torch.sigmoid(entire_space_logit(towers()[1].objectives[0], logits, towers()))
    assert torch.all((p >= 0) & (p <= 1))
    total = sum(objective_losses(towers(), logits, b).values())
    total.backward()
    assert math.isfinite(total.item()) and all(
        torch.isfinite(v.grad).all() for v in logits.values()
    )


@pytest.mark.parametrize("space", ["masked", "entire"])
def test_a_batch_with_no_clicks_gives_finite_losses(space):
    b = feed_like(click_rate=0.0)
    logits = {
        k: torch.randn(64, requires_grad=True) for k in ("click", "like", "play_time")
    }
    losses = objective_losses(towers(space, space), logits, b)
    assert all(math.isfinite(v.item()) for v in losses.values())
    if space == "masked":
        assert losses["like"].item() == 0.0 and losses["play_time"].item() == 0.0


@pytest.mark.parametrize(
    "build", [sbmm.SharedBottom, sbmm.SingleTask, sbmm.MMoE, sbmm.PLE]
)
def test_every_model_trains_entire_space_objectives_and_the_product_reaches_both_towers(
    build,
):
    sbmm.seed_everything(0)
    model = build([sbmm.Dense("x", 4)], towers())
    b = feed_like()
    out = model(b.features)
    objective_losses(model.tower_specs, out, b)["like"].backward()
    click_head = (
        model.towers["scene1"]
        if build is not sbmm.SingleTask
        else model.towers["scene1"]["click"]
    )
    like_head = (
        model.towers["scene2"]
        if build is not sbmm.SingleTask
        else model.towers["scene2"]["like"]
    )
    assert any(
        p.grad is not None and p.grad.abs().sum() > 0 for p in click_head.parameters()
    )
    assert any(
        p.grad is not None and p.grad.abs().sum() > 0 for p in like_head.parameters()
    )


def test_entire_space_training_recovers_the_conditional_probability():
    """Per-group logits fitted by click loss + ESMM loss: σ(like logit) must reach
    p(like | click).

    With one free logit per group the optimum is the data's own rates, so the targets
    are the empirical click rate and the empirical like rate among clicks. Float64 and
    tight tolerances make L-BFGS converge to them on any CPU (float32 stopped up to 4e-3
    short on some machines).
    """
    g = torch.Generator().manual_seed(1)
    n = 100_000
    group = torch.randint(0, 3, (n,), generator=g)
    p_click, p_like = torch.tensor([0.05, 0.2, 0.5]), torch.tensor([0.6, 0.1, 0.3])
    click = (torch.rand(n, generator=g) < p_click[group]).double()
    like = click * (torch.rand(n, generator=g) < p_like[group]).double()
    in_group = torch.stack([group == k for k in range(3)]).double()  # (3, n)
    click_rate = in_group @ click / in_group.sum(1)
    like_given_click = in_group @ like / (in_group @ click)
    b = sbmm.Batch({}, {"click": click, "like": like, "play_time": click})
    t = towers()
    params = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [params],
        max_iter=500,
        tolerance_grad=1e-12,
        tolerance_change=1e-15,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        logits = {
            "click": params[0][group],
            "like": params[1][group],
            "play_time": torch.zeros(n, dtype=torch.float64),
        }
        losses = objective_losses(t, logits, b)
        loss = losses["click"] + losses["like"]
        loss.backward()
        return loss

    opt.step(closure)
    fitted = torch.sigmoid(params.detach())
    assert torch.allclose(fitted[0], click_rate, atol=1e-6)
    assert torch.allclose(fitted[1], like_given_click, atol=1e-6)
    # and the data's conditional rates estimate the simulator's p(like | click)
    # (4 standard errors)
    se = (p_like * (1 - p_like) / (in_group @ click)).sqrt()
    assert torch.all((like_given_click - p_like.double()).abs() < 4 * se)


def test_evaluate_scores_conditional_objectives_on_the_given_samples():
    sbmm.seed_everything(0)
    model = sbmm.SharedBottom([sbmm.Dense("x", 4)], towers())
    b = feed_like(200)
    metrics = sbmm.evaluate(model, b)
    assert (
        metrics["like"]["n"] == int(b.labels["click"].sum())
        and metrics["click"]["n"] == 200
    )


@pytest.mark.parametrize(
    "objectives, message",
    [
        ([sbmm.Objective("like", given="clik")], "'like' is given 'clik'"),
        (
            [sbmm.Objective("t", "regression"), sbmm.Objective("like", given="t")],
            "binary",
        ),
        ([sbmm.Objective("a", given="b"), sbmm.Objective("b", given="a")], "cycle"),
    ],
)
def test_bad_conditional_declarations_raise(objectives, message):
    with pytest.raises(ValueError, match=message):
        sbmm.SharedBottom([sbmm.Dense("x", 4)], [sbmm.Tower("t", objectives)])


def test_entire_space_needs_given_and_no_mask():
    with pytest.raises(ValueError, match="'like'.*needs `given`"):
        sbmm.Objective("like", space="entire")
    with pytest.raises(ValueError, match="'like'.*drop `mask`"):
        sbmm.Objective("like", given="click", space="entire", mask="click")
    with pytest.raises(ValueError, match="space"):
        sbmm.Objective("like", given="click", space="everywhere")
