"""`SampleWeight`: declared per-sample loss weights, their exact effect on the loss and
its gradient."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import sbmm
from sbmm.losses import check_labels, objective_loss, sample_weights
from sbmm.sample_weights import SampleWeight


@pytest.fixture
def batch() -> sbmm.Batch:
    """click (0/1), a heavy-tailed play time that is 0 where click is 0, like (only
    after a click), a dense feature."""
    g = torch.Generator().manual_seed(1)
    n = 200
    click = (torch.rand(n, generator=g) < 0.3).float()
    play_time = click * torch.exp(2 + torch.randn(n, generator=g))
    like = click * (torch.rand(n, generator=g) < 0.4).float()
    return sbmm.Batch(
        {"x": torch.rand(n, generator=g)},
        {"click": click, "play_time": play_time, "like": like},
    )


def per_sample_bce(logits: torch.Tensor, batch: sbmm.Batch) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(
        logits, batch.labels["click"], reduction="none"
    )


def loss_and_grad(
    objective: sbmm.Objective, logits: torch.Tensor, batch: sbmm.Batch
) -> tuple[torch.Tensor, torch.Tensor]:
    x = logits.clone().requires_grad_()
    loss = objective_loss(objective, x, batch)
    loss.backward()
    return loss.detach(), x.grad


def expected_weights(batch: sbmm.Batch, value: torch.Tensor, on: str) -> torch.Tensor:
    click = batch.labels["click"] > 0
    rows = {"all": torch.ones_like(click), "positives": click, "negatives": ~click}[on]
    return torch.where(rows, value, 1.0)


@pytest.mark.parametrize("on", ["all", "positives", "negatives"])
def test_each_weighted_sample_scales_its_loss_and_gradient_exactly(batch, on):
    logits = torch.randn(len(batch), generator=torch.Generator().manual_seed(2))
    w = expected_weights(batch, batch.labels["play_time"], on)
    loss, grad = loss_and_grad(
        sbmm.Objective("click", sample_weight=SampleWeight("play_time", on=on)),
        logits,
        batch,
    )
    _, plain_grad = loss_and_grad(sbmm.Objective("click"), logits, batch)
    assert torch.allclose(loss, (w * per_sample_bce(logits, batch)).mean())
    assert torch.allclose(grad, plain_grad * w)


def test_positives_only_leaves_every_negative_at_weight_one(batch):
    w = sample_weights(
        sbmm.Objective(
            "click", sample_weight=SampleWeight("play_time", on="positives")
        ),
        batch,
    )
    click = batch.labels["click"] > 0
    assert torch.equal(w[~click], torch.ones(int((~click).sum())))
    assert torch.equal(w[click], batch.labels["play_time"][click])


@pytest.mark.parametrize(
    "options, transform",
    [
        (dict(transform="log1p"), torch.log1p),
        (dict(clip=10.0), lambda v: v.clamp(max=10.0)),
        # clip first, then log1p
        (dict(clip=10.0, transform="log1p"), lambda v: torch.log1p(v.clamp(max=10.0))),
        (dict(power=0.5), torch.sqrt),
        (dict(power=0.0), lambda v: torch.ones_like(v)),
        (dict(offset=1.0, scale=3.0), lambda v: 1 + 3 * v),
    ],
)
def test_transforms_are_applied_in_the_documented_order(batch, options, transform):
    objective = sbmm.Objective(
        "click", sample_weight=SampleWeight("play_time", on="positives", **options)
    )
    expected = expected_weights(
        batch, transform(batch.labels["play_time"]), "positives"
    )
    assert torch.allclose(sample_weights(objective, batch), expected)


def test_a_like_boost_weighs_liked_clicks_one_plus_alpha(batch):
    objective = sbmm.Objective(
        "click",
        sample_weight=SampleWeight("like", on="positives", offset=1.0, scale=4.0),
    )
    w = sample_weights(objective, batch)
    assert set(w.tolist()) == {1.0, 5.0}
    assert torch.equal(w == 5.0, batch.labels["like"] > 0)


@pytest.mark.parametrize("on", ["all", "positives"])
def test_batch_mean_makes_the_weighted_samples_average_one_and_ignores_the_units(
    batch, on
):
    seconds = SampleWeight("play_time", on=on, offset=0.5, normalise="batch_mean")
    w = sample_weights(sbmm.Objective("click", sample_weight=seconds), batch)
    rows = (
        batch.labels["click"] > 0
        if on == "positives"
        else torch.ones(len(batch), dtype=torch.bool)
    )
    assert torch.allclose(w[rows].mean(), torch.tensor(1.0))
    # (offset + seconds) in minutes: normalised by the batch mean, the weights do not
    # depend on the unit.
    batch.labels["play_minutes"] = (batch.labels["play_time"] + 0.5) / 60
    minutes = sbmm.Objective(
        "click",
        sample_weight=SampleWeight("play_minutes", on=on, normalise="batch_mean"),
    )
    assert torch.allclose(sample_weights(minutes, batch), w, rtol=1e-5)


def test_batch_mean_counts_only_the_samples_the_mask_admits(batch):
    objective = sbmm.Objective(
        "like", mask="click", sample_weight=SampleWeight("x", normalise="batch_mean")
    )
    w = sample_weights(objective, batch)
    admitted = batch.labels["click"] > 0
    assert torch.allclose(w[admitted].mean(), torch.tensor(1.0))
    assert torch.allclose(w, batch.features["x"] / batch.features["x"][admitted].mean())


def test_a_fixed_normalisation_divides_the_loss_and_gradient_exactly(batch):
    logits = torch.randn(len(batch), generator=torch.Generator().manual_seed(3))
    raw = sbmm.Objective("click", sample_weight=SampleWeight("x"))
    fixed = sbmm.Objective("click", sample_weight=SampleWeight("x", normalise=4.0))
    (loss_raw, grad_raw), (loss_fixed, grad_fixed) = (
        loss_and_grad(raw, logits, batch),
        loss_and_grad(fixed, logits, batch),
    )
    assert torch.allclose(loss_fixed, loss_raw / 4)
    assert torch.allclose(grad_fixed, grad_raw / 4)


def test_statistics_are_the_mean_and_quantile_over_the_weighted_samples(batch):
    declared = sbmm.Objective(
        "click",
        sample_weight=SampleWeight(
            "play_time", on="positives", clip_quantile=0.9, normalise="dataset_mean"
        ),
    )
    resolved = declared.with_statistics(batch)
    times = batch.labels["play_time"][batch.labels["click"] > 0]
    clip = float(np.quantile(times.double().numpy(), 0.9))
    assert resolved.sample_weight.clip == pytest.approx(clip)
    assert resolved.sample_weight.clip_quantile is None
    assert resolved.sample_weight.normalise == pytest.approx(
        float(times.clamp(max=clip).double().mean())
    )
    w = sample_weights(resolved, batch)
    # on the data the mean came from
    assert torch.allclose(w[batch.labels["click"] > 0].mean(), torch.tensor(1.0))
    assert sbmm.Objective("click", sample_weight=SampleWeight("x")).with_statistics(
        batch
    ).sample_weight == SampleWeight("x")


def test_unresolved_statistics_cannot_be_trained(batch):
    objective = sbmm.Objective(
        "click", sample_weight=SampleWeight("play_time", normalise="dataset_mean")
    )
    with pytest.raises(ValueError, match="'click'.*with_statistics"):
        objective_loss(objective, torch.zeros(len(batch)), batch)
    with pytest.raises(ValueError, match="'click'.*with_statistics"):
        check_labels([sbmm.Tower("t", [objective])], batch)


def test_a_weighted_fit_reaches_the_weighted_optimum(batch):
    """One logit per (clicked?) group can't separate anything; its optimum is weighted
    positives over negatives."""
    objective = sbmm.Objective(
        "click",
        sample_weight=SampleWeight("play_time", on="positives", normalise="batch_mean"),
    )
    logit = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([logit], max_iter=50, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = objective_loss(objective, logit.expand(len(batch)), batch)
        loss.backward()
        return loss

    opt.step(closure)
    click = batch.labels["click"]
    # Normalised by the batch mean, the positives weigh their count in total: the odds
    # are the raw odds.
    assert logit.item() == pytest.approx(
        float(torch.log(click.sum() / (1 - click).sum())), abs=1e-4
    )


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(on="both"), "'play_time'.*on"),
        (dict(transform="sqrt"), "'play_time'.*transform"),
        (dict(clip=10.0, clip_quantile=0.9), "'play_time'.*not both"),
        (dict(clip=-1.0), "'play_time'.*clip"),
        (dict(clip_quantile=1.5), "'play_time'.*clip_quantile"),
        (dict(power=-1.0), "'play_time'.*power"),
        (dict(scale=float("nan")), "'play_time'.*scale"),
        (dict(offset=-1.0), "'play_time'.*offset"),
        (dict(normalise="median"), "'play_time'.*normalise"),
        (dict(normalise=0.0), "'play_time'.*normalise"),
        (dict(normalise=True), "'play_time'.*normalise"),
    ],
)
def test_bad_options_raise_naming_the_column(options, message):
    with pytest.raises(ValueError, match=message):
        SampleWeight("play_time", **options)


def test_bad_declarations_raise_naming_the_objective(batch):
    with pytest.raises(TypeError, match="column"):
        SampleWeight(3)
    with pytest.raises(ValueError, match="'watch'.*binary"):
        sbmm.Objective(
            "watch",
            "regression",
            label="play_time",
            sample_weight=SampleWeight("like", on="positives"),
        )
    with pytest.raises(TypeError, match="'click'.*SampleWeight"):
        sbmm.Objective("click", sample_weight=3.0)


@pytest.mark.parametrize(
    "weight, message",
    [
        (SampleWeight("stay_time"), "'click'.*'stay_time' is not in the batch"),
        (SampleWeight(lambda b: torch.ones(3)), "'click'.*function must return"),
        (
            SampleWeight(lambda b: b.features["x"] - 2, transform="log1p"),
            "'click'.*finite and >= 0",
        ),
        (SampleWeight(lambda b: b.features["x"] - 2), "'click'.*finite and >= 0"),
    ],
)
def test_check_labels_validates_the_declared_weights(batch, weight, message):
    towers = [sbmm.Tower("t", [sbmm.Objective("click", sample_weight=weight)])]
    with pytest.raises(ValueError, match=message):
        check_labels(towers, batch)


def test_a_valid_declaration_passes_check_labels(batch):
    objective = sbmm.Objective(
        "click",
        sample_weight=SampleWeight(
            "x", transform="log1p", power=0.5, normalise="batch_mean"
        ),
    )
    check_labels([sbmm.Tower("t", [objective])], batch)  # raises on a problem
    assert torch.allclose(sample_weights(objective, batch).mean(), torch.tensor(1.0))


def test_a_column_of_the_wrong_shape_raises_naming_the_objective():
    batch = sbmm.Batch(
        {"tags": torch.zeros(4, 2)}, {"click": torch.tensor([0.0, 1.0, 0.0, 1.0])}
    )
    for weight in ("tags", SampleWeight("tags")):
        with pytest.raises(ValueError, match="'click'.*shape"):
            check_labels(
                [sbmm.Tower("t", [sbmm.Objective("click", sample_weight=weight)])],
                batch,
            )


def test_a_model_trains_with_declared_weights(batch):
    """fit runs a SampleWeight through the trainer and the weighted loss goes down."""
    weight = SampleWeight("play_time", on="positives", transform="log1p")
    towers = [
        sbmm.Tower("t", [sbmm.Objective("click", sample_weight=weight)], hidden=(4,))
    ]
    sbmm.seed_everything(0)
    model = sbmm.SharedBottom([sbmm.Dense("x")], towers, bottom=(8,))
    history = sbmm.fit(
        model,
        batch,
        epochs=5,
        batch_size=50,
        lr=1e-2,
        seed=0,
        progress=False,
        device="cpu",
    )
    assert history.train_loss["click"][-1] < history.train_loss["click"][0]


def test_an_entire_space_objective_weighs_the_positives_of_the_joint_label(batch):
    """For like trained on the entire space (ESMM), the positives are the impressions
    clicked and liked."""
    like = sbmm.Objective(
        "like",
        given="click",
        space="entire",
        sample_weight=SampleWeight("play_time", on="positives"),
    )
    towers = [sbmm.Tower("s1", [sbmm.Objective("click")]), sbmm.Tower("s2", [like])]
    g = torch.Generator().manual_seed(4)
    # some "likes" without a click
    batch.labels["like"] = (torch.rand(len(batch), generator=g) < 0.5).float()
    predictions = {
        "click": torch.randn(len(batch), generator=g),
        "like": torch.randn(len(batch), generator=g),
    }
    loss = sbmm.objective_losses(towers, predictions, batch)["like"]
    joint = batch.labels["click"] * batch.labels["like"]
    assert bool(((batch.labels["like"] > 0) & (joint == 0)).any())
    logit = sbmm.conditional.entire_space_logit(like, predictions, towers)
    w = torch.where(joint > 0, batch.labels["play_time"], 1.0)
    assert torch.allclose(
        loss,
        (w * F.binary_cross_entropy_with_logits(logit, joint, reduction="none")).mean(),
    )
