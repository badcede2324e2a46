"""Objective kinds (`sbmm.kinds`): one registry entry per kind, read by losses, metrics,
early stopping and evaluation; a kind registered in a test trains without touching the
library; the log-normal duration kind against its closed forms and a world whose truth
is known; output biases started at the best constant."""

import math

import pytest
import torch
import torch.nn.functional as F

import sbmm
from sbmm import kinds
from sbmm.losses import objective_losses


def world(n, seed, sigma=0.9):
    """A dense feature x and a duration T with log T = 0.5 + 0.8 x + σ ε: its true
    mean E[T | x] = e^{0.5 + 0.8 x + σ²/2}, its median e^{0.5 + 0.8 x}."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, generator=g)
    log_t = 0.5 + 0.8 * x[:, 0] + sigma * torch.randn(n, generator=g)
    truth = torch.exp(0.5 + 0.8 * x[:, 0] + sigma**2 / 2)
    return sbmm.Batch({"x": x}, {"t": torch.exp(log_t)}, {"mean_t": truth})


def duration_model(kind="lognormal", **objective):
    towers = [sbmm.Tower("t", [sbmm.Objective("t", kind, **objective)], hidden=(8,))]
    return sbmm.SharedBottom([sbmm.Dense("x")], towers, bottom=(8,))


def test_each_kind_is_one_registry_entry_and_an_unknown_one_is_named():
    assert {"binary", "regression", "lognormal"} <= set(kinds.KINDS)
    assert kinds.get("binary").probability and not kinds.get("lognormal").probability
    with pytest.raises(ValueError, match="'ranking'"):
        sbmm.Objective("x", "ranking")
    with pytest.raises(ValueError, match="'ranking'"):
        sbmm.data.TruthSpec("x", "p_x", "attainable_p_x", kind="ranking")


class Huber(kinds.Regression):
    """A kind that a user adds: Huber loss on a value, scored by RMSE and MAE."""

    name = "huber_test"
    metrics = ("rmse", "mae")

    def loss(self, output, target, reduction="none"):
        return F.huber_loss(output, target, reduction=reduction, delta=1.0)

    def metric(self, name, y, mean):
        if name == "mae":
            return float(abs(y - mean).mean())
        return super().metric(name, y, mean)


@pytest.fixture
def huber():
    kind = kinds.register(Huber())
    yield kind
    del kinds.KINDS[kind.name]


def test_a_kind_registered_in_a_test_trains_evaluates_and_early_stops(huber):
    data = world(2_000, seed=0)
    towers = [sbmm.Tower("t", [sbmm.Objective("t", "huber_test")], hidden=(8,))]
    torch.manual_seed(0)
    model = sbmm.SharedBottom([sbmm.Dense("x")], towers, bottom=(8,))
    train, valid = data[:1_600], data[1_600:]
    # Its loss is the kind's: Huber on the raw output.
    prediction = model(train.features)["t"]
    loss = objective_losses(model.tower_specs, {"t": prediction}, train)["t"]
    assert torch.allclose(loss, F.huber_loss(prediction, train.labels["t"]))
    rule = sbmm.EarlyStopping(patience=2, objective="t", metric="mae")
    history = sbmm.fit(model, train, valid, epochs=40, lr=0.02, early_stopping=rule)
    scores = sbmm.evaluate(model, valid)["t"]
    assert set(scores) >= {"rmse", "mae", "n", "loss"}
    assert history.epochs < 40  # it watched the kind's own metric, and stopped
    maes = [m["t"]["mae"] for m in history.valid_metrics]
    assert scores["mae"] == pytest.approx(min(maes))  # the best epoch's weights
    with pytest.raises(ValueError, match="'auc'"):
        sbmm.EarlyStopping(objective="t", metric="auc").check(model.objectives)


def test_lognormal_loss_is_the_gaussian_likelihood_of_log_t():
    kind = kinds.get("lognormal")
    output = torch.tensor([[0.3, -0.2], [1.0, 0.4], [-0.5, 0.0]])  # (μ, log σ)
    t = torch.tensor([0.7, 5.0, 0.2])
    normal = torch.distributions.Normal(output[:, 0], output[:, 1].exp())
    expected = -normal.log_prob(t.log()) - 0.5 * math.log(2 * math.pi)
    assert torch.allclose(kind.loss(output, t), expected)
    assert torch.allclose(kind.loss(output, t, reduction="mean"), expected.mean())


def test_lognormal_mean_carries_the_sigma_term():
    kind = kinds.get("lognormal")
    output = torch.tensor([[0.3, -0.2], [1.0, 0.4]])
    sigma = output[:, 1].exp()
    expected = torch.distributions.LogNormal(output[:, 0], sigma).mean
    assert torch.allclose(kind.mean(output), expected)
    # e^μ alone is the median: below the mean by e^{σ²/2}
    ratio = kind.mean(output) / output[:, 0].exp()
    assert torch.allclose(ratio, torch.exp(sigma**2 / 2))


def test_lognormal_learns_the_true_mean_duration_where_the_median_falls_short():
    data = world(20_000, seed=1)
    train, valid, test = data[:16_000], data[16_000:18_000], data[18_000:]
    torch.manual_seed(0)
    model = duration_model().init_output_bias(train)
    sbmm.fit(model, train, valid, epochs=15, lr=0.01, batch_size=256, seed=0)
    output = sbmm.predict(model, test)["t"]  # (N, 2): μ, log σ
    assert output.shape == (len(test), 2)
    mean = sbmm.predict_joint(model, test)["t"]  # E[T], the kind's mean
    truth = test.truth["mean_t"]
    assert (mean / truth - 1).abs().median() < 0.05
    assert output[:, 1].exp().median() == pytest.approx(0.9, abs=0.05)  # σ
    # The median e^μ under-predicts the mean by about e^{σ²/2} ≈ 1.5.
    assert (output[:, 0].exp() / truth).median() == pytest.approx(
        math.exp(-(0.9**2) / 2), rel=0.05
    )
    # Scored by the RMSE of its mean against T.
    rmse = sbmm.evaluate(model, test)["t"]["rmse"]
    assert rmse == pytest.approx(
        (mean - test.labels["t"]).pow(2).mean().sqrt().item(), rel=1e-5
    )


def test_a_duration_must_be_positive_where_it_is_read():
    data = world(100, seed=2)
    data.labels["t"][3] = 0.0
    model = duration_model()
    with pytest.raises(ValueError, match="'t'.*> 0"):
        sbmm.fit(model, data, epochs=1)


def test_a_lognormal_objective_cannot_train_on_the_entire_space():
    with pytest.raises(ValueError, match="'play'.*entire"):
        sbmm.Objective("play", "lognormal", given="click", space="entire")


def test_a_lognormal_objective_trains_by_ips_on_every_row():
    # Unclicked rows hold no duration (0); their loss and gradient stay finite.
    g = torch.Generator().manual_seed(3)
    x = torch.randn(500, 2, generator=g)
    click = (torch.rand(500, generator=g) < 0.3).float()
    play = click * torch.exp(torch.randn(500, generator=g))
    towers = [
        sbmm.Tower("c", [sbmm.Objective("click")]),
        sbmm.Tower(
            "p", [sbmm.Objective("play", "lognormal", given="click", space="ips")]
        ),
    ]
    model = sbmm.SharedBottom([sbmm.Dense("x", 2)], towers, bottom=(4,))
    batch = sbmm.Batch({"x": x}, {"click": click, "play": play})
    losses = objective_losses(towers, model(batch.features), batch)
    losses["play"].backward()
    assert torch.isfinite(losses["play"])
    assert all(
        torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None
    )


@pytest.mark.parametrize(
    "objective, label",
    [
        (sbmm.Objective("y"), (torch.rand(400) < 0.2).float()),
        (sbmm.Objective("y", "regression"), 3 + torch.randn(400)),
        (sbmm.Objective("y", "regression", dim=3), 3 + torch.randn(400, 3)),
        (sbmm.Objective("y", "lognormal"), torch.exp(1 + 0.5 * torch.randn(400))),
    ],
    ids=["binary", "regression", "regression-dim3", "lognormal"],
)
def test_output_biases_start_at_the_best_constant(objective, label):
    torch.manual_seed(0)
    batch = sbmm.Batch({"x": torch.randn(400, 2)}, {"y": label})
    towers = [sbmm.Tower("t", [objective])]

    def model(init):
        torch.manual_seed(0)
        m = sbmm.SharedBottom([sbmm.Dense("x", 2)], towers, bottom=(4,))
        return m.init_output_bias(batch) if init else m

    def first_loss(m):
        return objective_losses(towers, m(batch.features), batch)["y"].item()

    started, plain = model(True), model(False)
    # The best constant's loss: the kind's loss of its constant on every row.
    kind = kinds.get(objective.kind)
    constant = kind.constant(label).float().expand(400, -1).squeeze(-1)
    if objective.dim > 1:
        constant = constant.reshape(400, objective.dim)
    best = objective_losses(towers, {"y": constant}, batch)["y"].item()
    # With the last layer's weights at 0, the first step's loss is exactly its.
    with torch.no_grad():
        started.towers["t"][-1].weight.zero_()
    assert first_loss(started) == pytest.approx(best, rel=1e-5)
    # With its random weights it starts nearer the constant than without.
    assert abs(first_loss(model(True)) - best) < abs(first_loss(plain) - best)


def test_a_conditional_objective_starts_at_its_rate_given_its_chain():
    g = torch.Generator().manual_seed(4)
    click = (torch.rand(2_000, generator=g) < 0.3).float()
    like = click * (torch.rand(2_000, generator=g) < 0.2).float()
    batch = sbmm.Batch({"x": torch.randn(2_000, 1)}, {"click": click, "like": like})
    for space in ("masked", "entire"):
        towers = [
            sbmm.Tower("t", [sbmm.Objective("click")]),
            sbmm.Tower("v", [sbmm.Objective("like", given="click", space=space)]),
        ]
        model = sbmm.SharedBottom([sbmm.Dense("x")], towers).init_output_bias(batch)
        rate = like[click > 0].mean()
        bias = {t: torch.sigmoid(model.towers[t][-1].bias).item() for t in "tv"}
        assert bias["v"] == pytest.approx(rate.item())
        assert bias["t"] == pytest.approx(click.mean().item())


def test_a_lognormal_mean_that_overflows_is_a_divergence_naming_the_objective():
    # finite outputs (μ, log σ) whose mean e^{μ + σ²/2} is past float range: the
    # run diverged, as sweep_lr counts it (FloatingPointError), not an sklearn error
    from sbmm.metrics import scores

    t = sbmm.Objective("t", "lognormal")
    outputs = torch.tensor([[0.0, 0.0], [1.0, 6.0]])  # σ = e^6: σ²/2 ≈ 81,000
    with pytest.raises(FloatingPointError, match="'t'.*overflows on 1 rows"):
        scores(t, outputs, torch.tensor([1.0, 2.0]))
    assert math.isfinite(scores(t, outputs[:1], torch.tensor([1.0]))["rmse"])
