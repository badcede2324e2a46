"""IPS, doubly robust and ESCM² training of a post-click objective (`space="ips"`,
"dr", "escm2_ips", "escm2_dr"): closed-form cases, gradients, refusals, and training
under `fit` and `fit_replicas`."""

import math

import pytest
import torch
import torch.nn.functional as F

import sbmm
from sbmm.data import FeedSimulator, feed_features
from sbmm.debias import propensity
from sbmm.losses import objective_losses


def towers(space="ips", floor=None, imputation=None, **like):
    """click, and like given click trained in `space` (with its imputation, declared
    with the keywords `imputation`, for DR)."""
    scene2 = [
        sbmm.Objective(
            "like", given="click", space=space, propensity_floor=floor, **like
        )
    ]
    if space in ("dr", "escm2_dr"):
        scene2.append(
            sbmm.Objective(
                "like_error", "regression", imputes="like", **(imputation or {})
            )
        )
    return [
        sbmm.Tower("scene1", [sbmm.Objective("click")]),
        sbmm.Tower("scene2", scene2),
    ]


def world(n, seed, reps=1):
    """`reps` draws of `n` impressions with selection on the outcome: the true click
    probability p and the counterfactual like r (drawn for every impression, clicked
    or not) both rise with x, so that clicked impressions like more than average.
    Returns p, r, o (each (reps, n)): o is the click."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(reps, n, generator=g, dtype=torch.float64)
    p = 0.1 + 0.8 * x  # (reps, n) in [0.1, 0.9]
    r = (torch.rand(reps, n, generator=g, dtype=torch.float64) < 0.1 + 0.6 * x).double()
    o = (torch.rand(reps, n, generator=g, dtype=torch.float64) < p).double()
    return p, r, o


def batch(o, r):
    """A Batch of one draw: click o, like o·r (a like exists only after a click)."""
    return sbmm.Batch({}, {"click": o, "like": o * r}, {})


def losses(space, o, r, click_logit, like_logit, error=None, floor=None, **declared):
    predictions = {"click": click_logit, "like": like_logit}
    if error is not None:
        predictions["like_error"] = error
    return objective_losses(towers(space, floor, **declared), predictions, batch(o, r))


def test_ips_with_the_true_propensity_estimates_the_all_impression_loss():
    # A constant predictor q: the loss over every impression is BCE(r, q); IPS sees
    # only the clicked ones, weighted by 1/p. Averaged over 400 draws it matches the
    # all-impression loss within 4 standard errors, where the masked loss (clicked
    # only) is off by many.
    p, r, o = world(2_000, seed=0, reps=400)
    q = torch.full_like(p, 0.3)
    logit = torch.logit(q)
    ips, masked, full = [], [], []
    for k in range(len(p)):
        ips.append(losses("ips", o[k], r[k], torch.logit(p[k]), logit[k])["like"])
        masked.append(
            F.binary_cross_entropy(q[k][o[k] > 0], r[k][o[k] > 0]).to(torch.float64)
        )
        full.append(F.binary_cross_entropy(q[k], r[k]))
    ips, masked, full = (torch.stack(v) for v in (ips, masked, full))
    se = (ips - full).std() / len(ips) ** 0.5
    assert abs(float((ips - full).mean())) < 4 * se
    assert abs(float((masked - full).mean())) > 20 * se


def test_dr_with_a_perfect_imputation_is_the_full_information_loss():
    # ê_i = e_i, the loss the model would have on impression i had its like been
    # observed: DR is the mean over every impression exactly, whatever p̂.
    p, r, o = (v[0] for v in world(1_000, seed=1))
    like_logit = torch.linspace(-2, 1, len(p), dtype=torch.float64)
    e = F.binary_cross_entropy_with_logits(like_logit, r, reduction="none")
    click_logit = torch.randn(len(p), dtype=torch.float64)  # any propensity
    dr = losses("dr", o, r, click_logit, like_logit, error=e)
    torch.testing.assert_close(dr["like"], e.mean())
    assert float(dr["like_error"]) == pytest.approx(0.0, abs=1e-12)


def test_dr_with_zero_imputation_is_ips():
    p, r, o = (v[0] for v in world(1_000, seed=2))
    click, like = torch.logit(p), torch.linspace(-2, 1, len(p), dtype=torch.float64)
    zero = torch.zeros_like(p)
    dr = losses("dr", o, r, click, like, error=zero)
    ips = losses("ips", o, r, click, like)
    torch.testing.assert_close(dr["like"], ips["like"])
    e = F.binary_cross_entropy_with_logits(like, r, reduction="none")
    torch.testing.assert_close(dr["like_error"], (e[o > 0] ** 2).mean())


def test_a_propensity_weighted_imputation_fits_over_every_impression():
    # DR-JL and ESCM²: (1/N) Σ o (ê − ℓ)² / p̂, against the plain Σ o (ê − ℓ)² / Σ o.
    p, r, o = (v[0] for v in world(1_000, seed=4))
    click, like = torch.logit(p), torch.linspace(-2, 1, len(p), dtype=torch.float64)
    error = torch.full_like(p, 0.4)
    e = F.binary_cross_entropy_with_logits(like, r, reduction="none")
    weighted = {"propensity_weighted": True}
    got = losses("dr", o, r, click, like, error=error, imputation=weighted)
    plain = losses("dr", o, r, click, like, error=error)
    squared = o * (error - e) ** 2  # (N,) zero where unclicked
    torch.testing.assert_close(got["like_error"], (squared / p).mean())
    torch.testing.assert_close(plain["like_error"], squared.sum() / o.sum())
    torch.testing.assert_close(got["like"], plain["like"])  # L_DR is unchanged


@pytest.mark.parametrize("space", ["escm2_ips", "escm2_dr"])
@pytest.mark.parametrize("weight", [None, 0.0, 2.5])
def test_escm2_is_esmms_loss_plus_lambda_times_the_counterfactual_one(space, weight):
    # Wang et al. (2022): L = L_CTCVR + λ L_IPS|DR, L_CTCVR the BCE of
    # p(click) · p(like | click) against click · like over every impression.
    p, r, o = (v[0] for v in world(1_000, seed=5))
    click, like = torch.logit(p), torch.linspace(-2, 1, len(p), dtype=torch.float64)
    error = torch.full_like(p, 0.3)
    plain = "ips" if space == "escm2_ips" else "dr"
    got = losses(space, o, r, click, like, error=error, counterfactual_weight=weight)
    counterfactual = losses(plain, o, r, click, like, error=error)
    ctcvr = F.binary_cross_entropy(torch.sigmoid(click) * torch.sigmoid(like), o * r)
    lam = 1.0 if weight is None else weight
    torch.testing.assert_close(got["like"], ctcvr + lam * counterfactual["like"])
    torch.testing.assert_close(got["click"], counterfactual["click"])
    if plain == "dr":
        torch.testing.assert_close(got["like_error"], counterfactual["like_error"])


def test_ips_is_the_mean_over_every_impression_with_the_floor_bounding_weights():
    o = torch.tensor([1.0, 1.0, 0.0, 0.0])
    r = torch.tensor([1.0, 0.0, 0.0, 0.0])
    click = torch.logit(torch.tensor([0.5, 1e-6, 0.5, 0.5]))  # p̂ = 1e-6 → the floor
    like = torch.zeros(4)
    bce = torch.log(torch.tensor(2.0))  # BCE at probability 1/2, either label
    for floor in (0.05, 0.2):
        got = losses("ips", o, r, click, like, floor=floor)["like"]
        torch.testing.assert_close(got, (bce / 0.5 + bce / floor) / 4)


def test_the_propensity_is_the_product_along_the_chain():
    chain = [
        sbmm.Tower(
            "s", [sbmm.Objective("stay"), sbmm.Objective("click", given="stay")]
        ),
        sbmm.Tower("v", [sbmm.Objective("like", given="click", space="ips")]),
    ]
    logits = {"stay": torch.tensor([0.0, -9.0]), "click": torch.tensor([0.0, 0.0])}
    got = propensity(chain[1].objectives[0], logits, chain)
    torch.testing.assert_close(got, torch.tensor([0.25, 0.05]))


@pytest.mark.parametrize("space", ["ips", "dr"])
def test_gradients_reach_the_head_on_clicked_rows_only_and_never_the_propensity(space):
    p, r, o = (v[0] for v in world(200, seed=3))
    click = torch.logit(p).requires_grad_()
    like = torch.linspace(-2, 1, len(p), dtype=torch.float64, requires_grad=True)
    error = torch.full_like(p, 0.4, requires_grad=True)
    got = losses(space, o, r, click, like, error=error if space == "dr" else None)
    (g_click, g_like, g_error) = torch.autograd.grad(
        got["like"], (click, like, error), allow_unused=True
    )
    assert g_click is None or bool((g_click == 0).all())  # p̂ is detached
    assert bool((g_like[o == 0] == 0).all()) and bool((g_like[o > 0] != 0).all())
    # the head's gradient is IPS's: o_i / (N p̂_i) · ∂ℓ_i
    expected = o / (len(o) * p) * (torch.sigmoid(like) - r)
    torch.testing.assert_close(g_like, expected)
    # the DR term leaves ê alone; ê learns from its own fit, on clicked rows only
    assert g_error is None or bool((g_error == 0).all())
    if space == "dr":
        (g_fit,) = torch.autograd.grad(got["like_error"], error)
        assert bool((g_fit[o == 0] == 0).all()) and bool((g_fit[o > 0] != 0).all())


def test_an_unclicked_like_may_be_missing_and_a_batch_without_clicks_is_finite():
    o = torch.tensor([1.0, 0.0, 0.0])
    labels = {"click": o, "like": torch.tensor([1.0, float("nan"), float("nan")])}
    predictions = {
        "click": torch.zeros(3),
        "like": torch.zeros(3),
        "like_error": torch.zeros(3),
    }
    for space in ("ips", "dr"):
        got = objective_losses(towers(space), predictions, sbmm.Batch({}, labels, {}))
        assert all(bool(torch.isfinite(v)) for v in got.values())
        none = {"click": torch.zeros(3), "like": torch.zeros(3)}
        got = objective_losses(towers(space), predictions, sbmm.Batch({}, none, {}))
        assert float(got["like"]) == 0.0


def test_across_shares_the_mean_out_over_ranks():
    p, r, o = (v[0] for v in world(100, seed=4))
    predictions = {
        "click": torch.logit(p),
        "like": torch.zeros_like(p),
        "like_error": torch.zeros_like(p),
    }
    for space in ("ips", "dr"):
        one = objective_losses(towers(space), predictions, batch(o, r))
        two = objective_losses(
            towers(space), predictions, batch(o, r), across=lambda c: 2 * c
        )
        for name in one:
            torch.testing.assert_close(two[name], one[name] / 2)


@pytest.mark.parametrize(
    "declare, match",
    [
        (lambda: sbmm.Objective("like", space="ips"), "'like'.*needs `given`"),
        (lambda: sbmm.Objective("like", space="dr"), "'like'.*needs `given`"),
        (
            lambda: sbmm.Objective("like", given="click", space="ips", mask="click"),
            "'like'.*drop `mask`",
        ),
        *[
            (
                lambda f=f: sbmm.Objective(
                    "like", given="click", space="ips", propensity_floor=f
                ),
                r"'like'.*propensity_floor must be in \(0, 1\]",
            )
            for f in (0, -0.1, 1.5, float("nan"), "0.1")
        ],
        (
            lambda: sbmm.Objective("like", given="click", propensity_floor=0.1),
            "'like'.*propensity_floor is for space='ips' or 'dr' only",
        ),
        (
            lambda: sbmm.Objective(
                "like", given="click", space="dr", sample_weight="play_time"
            ),
            "'like'.*takes no sample_weight",
        ),
        (
            lambda: sbmm.Objective("e", imputes="like"),
            "'e'.*kind='regression'",
        ),
        (
            lambda: sbmm.Objective("e", "regression", imputes="like", label="x"),
            "'e'.*takes no label",
        ),
        (
            lambda: sbmm.Objective("e", "regression", imputes="e"),
            "'e'.*cannot impute itself",
        ),
        (
            lambda: sbmm.Objective(
                "like", given="click", space="ips", counterfactual_weight=0.5
            ),
            "'like'.*counterfactual_weight is for space='escm2_ips' or 'escm2_dr'",
        ),
        (
            lambda: sbmm.Objective("like", given="click", counterfactual_weight=0.5),
            "'like'.*counterfactual_weight is for",
        ),
        *[
            (
                lambda w=w: sbmm.Objective(
                    "like", given="click", space="escm2_ips", counterfactual_weight=w
                ),
                f"'like'.*counterfactual_weight must be a number >= 0, got {w!r}",
            )
            for w in (-1.0, float("nan"), "1")
        ],
        (
            lambda: sbmm.Objective("t", "lognormal", given="click", space="escm2_dr"),
            "'t'.*'lognormal' objective cannot train on the entire space",
        ),
        (
            lambda: sbmm.Objective("like", given="click", propensity_weighted=True),
            "'like'.*propensity_weighted weighs the fit of an error imputation",
        ),
        (
            lambda: sbmm.Objective(
                "e", "regression", imputes="like", propensity_weighted="yes"
            ),
            "'e'.*propensity_weighted must be True or False, got 'yes'",
        ),
    ],
)
def test_bad_declarations_are_refused_naming_the_objective(declare, match):
    with pytest.raises(ValueError, match=match):
        declare()


FEATURES = [sbmm.Dense("x")]


@pytest.mark.parametrize(
    "scene2, match",
    [
        ([sbmm.Objective("like", given="click", space="dr")], "'like'.*exactly one"),
        (
            [
                sbmm.Objective("like", given="click", space="dr"),
                sbmm.Objective("e1", "regression", imputes="like"),
                sbmm.Objective("e2", "regression", imputes="like"),
            ],
            "'like'.*exactly one.*'e1', 'e2'",
        ),
        (
            [
                sbmm.Objective("like", given="click", space="ips"),
                sbmm.Objective("e", "regression", imputes="like"),
            ],
            "'e' imputes 'like'.*space='dr'",
        ),
        ([sbmm.Objective("e", "regression", imputes="lik")], "'e' imputes 'lik'"),
    ],
)
def test_bad_towers_are_refused_naming_the_objective(scene2, match):
    declared = [
        sbmm.Tower("scene1", [sbmm.Objective("click")]),
        sbmm.Tower("scene2", scene2),
    ]
    with pytest.raises(ValueError, match=match):
        sbmm.SharedBottom(FEATURES, declared)


SIMULATOR = FeedSimulator(n_users=200, n_items=100, n_authors=20, latent_dim=8)
SPECS = feed_features(SIMULATOR.config, id_dim=4, content_dim=4, attribute_dim=2)
RUN = {"epochs": 2, "batch_size": 64, "lr": 1e-2, "device": "cpu", "progress": False}


@pytest.fixture(scope="module")
def feed():
    data = SIMULATOR.simulate(600, seed=0)
    return data.train, data.valid


@pytest.mark.parametrize("space", ["ips", "dr", "escm2_dr"])
def test_fit_and_fit_replicas_train_it_alike(feed, space):
    train, valid = feed
    declared = towers(space)

    def build():
        return sbmm.SharedBottom(SPECS, declared, bottom=(16, 8))

    replicas = sbmm.fit_replicas(build, train, valid, seeds=(0, 1), **RUN)
    sbmm.seed_everything(0)
    model = build()
    history = sbmm.fit(model, train, valid, seed=0, **RUN)
    for (name, p), (_, q) in zip(
        replicas.models[0].named_parameters(), model.named_parameters()
    ):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=2e-5, msg=name)
    for name, values in history.train_loss.items():
        expected = pytest.approx(values, rel=1e-5, abs=1e-6)
        assert replicas.histories[0].train_loss[name] == expected, name
    dr = space.endswith("dr")
    names = {"total", "click", "like"} | ({"like_error"} if dr else set())
    assert set(history.train_loss) == names
    # (the IPS loss itself may rise as p̂ falls towards the click rate)
    assert history.train_loss["click"][-1] < history.train_loss["click"][0]
    assert all(math.isfinite(v) for vs in history.train_loss.values() for v in vs)
    scores = sbmm.evaluate(model, valid)
    clicked = int(valid.labels["click"].sum())
    assert scores["like"]["n"] == clicked and 0 < scores["like"]["auc"] < 1
    if dr:
        assert scores["like_error"]["n"] == clicked and scores["like_error"]["loss"] > 0
