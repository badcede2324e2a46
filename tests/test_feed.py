"""The feed simulator: causal structure, labels drawn from the truth, rates, knobs,
declarations."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate
from scipy.special import expit
from scipy.stats import spearmanr

import sbmm
from sbmm.anchors import anchor_table
from sbmm.data import FeedConfig, FeedSimulator, Latent, TruthSpec
from sbmm.losses import check_labels

N = 200_000
TRUTH = [  # the noisy truth's columns
    "p_stay",
    "stay_time_given_stay",
    "p_click",
    "play_time_given_click",
    "p_like_given_click",
]


@pytest.fixture(scope="module")
def data():
    return FeedSimulator().simulate(N, seed=0)


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.double(), b.double()]))[0, 1])


def like_gap(data) -> float:
    """Mean P(like | click) over clicked impressions minus its mean over all
    impressions."""
    p_like, clicked = (
        data.truth["p_like_given_click"].double(),
        data.labels["click"].bool(),
    )
    return float(p_like[clicked].mean() - p_like.mean())


def test_causal_constraints_hold_on_every_row(data):
    y = data.labels
    stay, click, like = (y[k].bool() for k in ("stay", "click", "like"))
    assert not (click & ~stay).any(), "click implies stay"
    assert not (like & ~click).any(), "like implies click"
    assert torch.equal(y["stay_time"] > 0, stay)
    assert torch.equal(y["play_time"] > 0, click)
    assert (y["stay_time"] >= 0).all() and (y["play_time"] >= 0).all()
    for name in ("stay", "click", "like"):
        assert ((y[name] == 0) | (y[name] == 1)).all()
    t = data.truth
    assert (t["p_click"] <= t["p_stay"]).all()
    for name in ("p_stay", "p_click", "p_like_given_click"):
        assert ((t[name] > 0) & (t[name] < 1)).all()
    for name in ("stay_time_given_stay", "play_time_given_click"):
        assert (t[name] > 0).all()


def _within_four_se(
    observed: torch.Tensor, expected: torch.Tensor, variance: torch.Tensor
) -> None:
    """Mean of independent draws `observed` against the mean of their expectations,
    given their variances."""
    se = math.sqrt(float(variance.double().sum())) / len(observed)
    gap = float(observed.double().mean() - expected.double().mean())
    assert abs(gap) < 4 * se, f"empirical mean off by {gap:.5f}, 4 SE = {4 * se:.5f}"


def test_labels_are_drawn_from_the_truth(data):
    y, t, c = data.labels, data.truth, data.config
    _within_four_se(y["stay"], t["p_stay"], t["p_stay"] * (1 - t["p_stay"]))
    _within_four_se(y["click"], t["p_click"], t["p_click"] * (1 - t["p_click"]))
    clicked, stayed = y["click"].bool(), y["stay"].bool()
    p_like = t["p_like_given_click"][clicked]
    _within_four_se(y["like"][clicked], p_like, p_like * (1 - p_like))
    # A lognormal time of mean E and log-spread s has variance E²(exp(s²) − 1).
    play = t["play_time_given_click"][clicked].double()
    _within_four_se(
        y["play_time"][clicked], play, play**2 * math.expm1(c.play_time_sigma**2)
    )
    stay = t["stay_time_given_stay"][stayed].double()
    _within_four_se(
        y["stay_time"][stayed], stay, stay**2 * math.expm1(c.stay_time_sigma**2)
    )


def test_default_rates_are_realistic(data):
    y = data.labels
    clicked, stayed = y["click"].bool(), y["stay"].bool()
    assert 0.30 <= y["stay"].mean() <= 0.50
    assert 0.05 <= y["click"].mean() <= 0.15
    assert 0.05 <= y["like"][clicked].mean() <= 0.20
    for time, rows in ((y["stay_time"], stayed), (y["play_time"], clicked)):
        assert time[rows].mean() > 1.3 * time[rows].median(), (
            "times are heavy-tailed (mean well above median)"
        )


def test_same_seed_same_data_other_seed_other_data():
    a, b, other = (FeedSimulator().simulate(5_000, seed=s) for s in (7, 7, 8))
    for part in ("features", "labels", "truth"):
        for name, value in getattr(a, part).items():
            assert torch.equal(value, getattr(b, part)[name]), name
    assert torch.equal(a.train.labels["click"], b.train.labels["click"])
    assert not torch.equal(a.truth["p_click"], other.truth["p_click"])
    assert not torch.equal(a.features["item_id"], other.features["item_id"])


def test_columns_have_compact_dtypes_and_shapes(data):
    f, c = data.features, data.config
    for name in ("user_id", "item_id", "author_id"):
        assert f[name].dtype == torch.int32 and f[name].shape == (N,)
    for name in ("category", "age", "gender", "city_tier"):
        assert f[name].dtype == torch.int16 and f[name].shape == (N,)
    assert f["tags"].dtype == torch.int16 and f["tags"].shape == (N, c.max_tags)
    for name in ("duration", "popularity", "activity"):
        assert f[name].dtype == torch.float32 and f[name].shape == (N,)
    for table in (data.labels, data.truth):
        assert all(v.dtype == torch.float32 and v.shape == (N,) for v in table.values())
    assert set(data.labels) == {"stay", "stay_time", "click", "play_time", "like"}
    assert set(data.truth) == set(TRUTH) | {"attainable_" + name for name in TRUTH}


def test_tags_are_distinct_padded_sets_of_one_or_more(data):
    tags = data.features["tags"].long()  # (N, L)
    present = tags >= 0
    assert present[:, 0].all(), "every item has at least one tag"
    assert (present[:, :-1] | ~present[:, 1:]).all(), "padding (-1) only after the tags"
    assert (tags[~present] == -1).all()
    n_present = present.sum(1)
    n_distinct = torch.tensor(
        [len(set(row[row >= 0].tolist())) for row in tags[:2_000]]
    )
    assert torch.equal(n_distinct, n_present[:2_000])
    assert set(n_present.unique().tolist()) == set(range(1, data.config.max_tags + 1))


def test_feature_specs_build_a_model_that_runs_on_the_data(data):
    towers = [
        sbmm.Tower(
            "discovery",
            [
                sbmm.Objective("stay"),
                sbmm.Objective("stay_time", kind="regression", given="stay"),
                sbmm.Objective("click"),
            ],
        ),
        sbmm.Tower(
            "video",
            [
                sbmm.Objective("play_time", kind="regression", given="click"),
                sbmm.Objective("like", given="click"),
            ],
        ),
    ]
    model = sbmm.SharedBottom(data.feature_specs, towers)
    check_labels(towers, data.train)
    with torch.no_grad():
        out = model(data.train.features)
    assert set(out) == {"stay", "stay_time", "click", "play_time", "like"}
    assert all(
        v.shape == (len(data.train),) and torch.isfinite(v).all() for v in out.values()
    )
    vocab = {
        f.name: f.vocab_size for f in data.feature_specs if hasattr(f, "vocab_size")
    }
    assert (
        vocab["user_id"] == data.config.n_users and vocab["tags"] == data.config.n_tags
    )


def test_split_and_device_move(data):
    parts = (data.train, data.valid, data.test)
    assert [len(p) for p in parts] == [0.8 * N, 0.1 * N, 0.1 * N]
    # A shuffle of the rows: column sums are preserved.
    assert sum(float(p.labels["click"].sum()) for p in parts) == float(
        data.labels["click"].sum()
    )
    assert len(data) == N
    moved = data.to("meta")
    assert all(
        b.device.type == "meta"
        for b in (moved.batch, moved.train, moved.valid, moved.test)
    )
    assert data.batch.device.type == "cpu", "to() returns a copy"


def test_dense_features_carry_signal(data):
    f, t = data.features, data.truth
    assert pearson(f["activity"], torch.logit(t["p_stay"].double())) > 0.4
    assert pearson(f["popularity"], torch.logit(t["p_click"].double())) > 0.2
    assert pearson(f["duration"], t["play_time_given_click"].log()) > 0.4


def test_task_correlation_aligns_click_and_like():
    r = []
    for rho in (-1.0, -0.5, 0.0, 0.5, 1.0):
        t = FeedSimulator(task_correlation=rho).simulate(20_000, seed=0).truth
        r.append(
            pearson(
                torch.logit(t["p_click"].double()),
                torch.logit(t["p_like_given_click"].double()),
            )
        )
    assert all(a + 0.1 < b for a, b in zip(r, r[1:])), r
    assert r[0] < -0.3 and r[-1] > 0.3


def test_clickbait_makes_clicked_items_a_biased_sample_of_quality():
    # Unrelated tasks: clicks select on quality only through bait.
    unbiased, baited = (
        like_gap(
            FeedSimulator(task_correlation=0.0, clickbait=cb).simulate(50_000, seed=0)
        )
        for cb in (0.0, 2.0)
    )
    assert baited < 0 and abs(baited) > 3 * abs(unbiased), (unbiased, baited)
    # Related tasks: clicked items are better than average without bait, worse with much
    # of it.
    honest, bait_heavy = (
        like_gap(FeedSimulator(clickbait=cb).simulate(50_000, seed=0))
        for cb in (0.0, 3.0)
    )
    assert honest > 0 > bait_heavy, (honest, bait_heavy)


@pytest.mark.parametrize(
    "knobs, named",
    [
        ({"task_correlation": 1.5}, "task_correlation"),
        ({"task_correlation": float("nan")}, "task_correlation"),
        ({"clickbait": -0.1}, "clickbait"),
        ({"noise": -1.0}, "noise"),
        ({"n_users": 0}, "n_users"),
        ({"n_items": 2.5}, "n_items"),
        ({"latent_dim": 0}, "latent_dim"),
        ({"n_tags": 3, "max_tags": 4}, "max_tags"),
        ({"n_tags": 40_000}, "n_tags"),
        ({"play_time_sigma": 0.0}, "play_time_sigma"),
        ({"duration_spread": 0.0}, "duration_spread"),
        ({"duration_spread": -1.0}, "duration_spread"),
        ({"duration_spread": float("inf")}, "duration_spread"),
        ({"split": (0.5, 0.2)}, "split"),
        ({"clickbiat": 1.0}, "clickbiat"),
    ],
)
def test_bad_knobs_raise_naming_the_knob(knobs, named):
    with pytest.raises(ValueError, match=named):
        FeedSimulator(**knobs)


def test_config_validates_on_its_own_and_simulate_checks_its_arguments():
    with pytest.raises(ValueError, match="clickbait"):
        FeedConfig(clickbait=-1)
    with pytest.raises(ValueError, match="n_impressions"):
        FeedSimulator().simulate(0)
    with pytest.raises(TypeError, match="seed"):
        FeedSimulator().simulate(10, seed=1.5)


# Float64 sums of every column of the first default world (2,000 users, 1,000 items, 100
# authors, latent width 8), simulate(2_000, seed=11), recorded
# before the attainable truth was added (the change was also checked bit for bit, on
# four worlds). A changed draw, formula or draw order moves a sum far beyond the
# tolerance, which allows for a last-bit difference of exp between platforms.
FINGERPRINT = {
    "features": {
        "user_id": 2011210.0,
        "item_id": 979130.0,
        "author_id": 48119.0,
        "category": 12900.0,
        "tags": 154105.0,
        "age": 4191.0,
        "gender": 728.0,
        "city_tier": 4245.0,
        "duration": 17.18517163931392,
        "popularity": 909.2367313415161,
        "activity": 868.2709872566629,
    },
    "labels": {
        "stay": 822.0,
        "stay_time": 2274.021651700139,
        "click": 168.0,
        "play_time": 4101.324253082275,
        "like": 12.0,
    },
    "truth": {
        "p_stay": 821.386813621968,
        "stay_time_given_stay": 4977.929846256971,
        "p_click": 183.8052728932871,
        "play_time_given_click": 41846.72807058692,
        "p_like_given_click": 131.34126274925075,
    },
}


def test_columns_that_existed_keep_their_values():
    first_world = dict(n_users=2_000, n_items=1_000, n_authors=100, latent_dim=8)
    data = FeedSimulator(**first_world).simulate(2_000, seed=11)
    for part, sums in FINGERPRINT.items():
        for name, expected in sums.items():
            value = float(getattr(data, part)[name].double().sum())
            assert value == pytest.approx(expected, rel=1e-7, abs=1e-9), (part, name)


def test_truth_specs_pair_each_label_with_its_columns_and_parent(data):
    specs = data.truth_specs
    assert list(specs) == list(data.labels)
    for label, spec in specs.items():
        assert isinstance(spec, TruthSpec) and spec.label == label
        assert {spec.truth, spec.attainable} <= set(data.truth)
        assert spec.attainable == "attainable_" + spec.truth
        assert spec.kind == ("regression" if label.endswith("_time") else "binary")
    parents = {k: s.parent for k, s in specs.items() if s.parent}
    assert parents == {"stay_time": "stay", "play_time": "click", "like": "click"}
    assert specs["like"].truth == "p_like_given_click"
    assert torch.equal(specs["like"].rows(data.batch), data.labels["click"] > 0)
    assert specs["click"].rows(data.batch).all()
    with pytest.raises(TypeError):
        specs["new"] = specs["like"]  # read-only


def test_attainable_columns_are_probabilities_and_means_like_the_truth(data):
    t = data.truth
    for name in ("p_stay", "p_click", "p_like_given_click"):
        assert ((t["attainable_" + name] > 0) & (t["attainable_" + name] < 1)).all()
    assert (t["attainable_p_click"] <= t["attainable_p_stay"]).all()
    for name in ("stay_time_given_stay", "play_time_given_click"):
        assert (t["attainable_" + name] > 0).all()
    # Over the impressions the noise averages out too: the two truths share their means.
    for name in TRUTH:
        noisy, attainable = t[name].double(), t["attainable_" + name].double()
        se = float((noisy - attainable).std()) / math.sqrt(N)
        assert abs(float(noisy.mean() - attainable.mean())) < 4 * se, name


def test_without_noise_the_attainable_truth_is_the_truth():
    t = FeedSimulator(noise=0.0).simulate(2_000, seed=0).truth
    for name in TRUTH:
        torch.testing.assert_close(t["attainable_" + name], t[name], rtol=1e-6, atol=0)


@pytest.mark.parametrize("noise", [0.5, 1.5])
def test_attainable_truth_is_the_truth_averaged_over_the_noise(noise):
    # The same impressions (so the same latent logits), with the noise redrawn K times.
    n, draws = 200, 4_000
    simulator = FeedSimulator(noise=noise)
    data = simulator.simulate(n, seed=0)
    f = data.features
    latent = simulator.latent(f["user_id"], f["item_id"], seed=0)
    attainable = latent.attainable(noise)  # each (n,)
    attainable["p_click"] = attainable["p_stay"] * attainable["p_click_given_stay"]
    for name in TRUTH:  # the simulator's columns are these values
        column = torch.from_numpy(attainable[name].astype(np.float32))
        assert torch.equal(data.truth["attainable_" + name], column), name

    eps = noise * np.random.default_rng(1).standard_normal((5, draws, n))
    truth = latent.truth(eps)  # each (K, n)
    truth["p_click"] = truth["p_stay"] * truth["p_click_given_stay"]
    plug_in = latent.truth(np.zeros(5))  # ε = 0: σ(z) for E[σ(z + ε)], a wrong answer
    plug_in["p_click"] = plug_in["p_stay"] * plug_in["p_click_given_stay"]
    for name, value in truth.items():
        mean, se = value.mean(0), value.std(0) / math.sqrt(draws)  # (n,) each
        z = np.abs(mean - attainable[name]) / se
        assert z.max() < 5, f"{name}: Monte Carlo mean off by {z.max():.1f} SE"
        z_plug_in = np.abs(mean - plug_in[name]) / se
        assert z_plug_in.max() > 10, f"{name}: too few draws to see the noise matter"


@pytest.mark.parametrize("noise", [0.5, 2.0, 5.0, 10.0])
def test_quadrature_matches_adaptive_integration(noise):
    z = np.linspace(-9.0, 6.0, 16)
    latent = Latent(z, z, z, np.zeros_like(z), z, np.ones_like(z))

    def density(e: float) -> float:
        return math.exp(-0.5 * (e / noise) ** 2) / (noise * math.sqrt(2 * math.pi))

    expected = [
        integrate.quad(
            lambda e: expit(zi + e) * density(e),
            -14 * noise,
            14 * noise,
            points=[-zi],
            epsabs=1e-13,
            limit=500,
        )[0]
        for zi in z
    ]
    attainable = latent.attainable(noise)
    np.testing.assert_allclose(attainable["p_stay"], expected, rtol=0, atol=1e-7)
    stay_time = attainable["stay_time_given_stay"]
    np.testing.assert_allclose(stay_time, 2 * math.exp(noise**2 / 2))


def test_latent_checks_the_ids():
    simulator = FeedSimulator(n_users=10, n_items=5)
    assert simulator.latent([0, 9], [4, 0]).stay.shape == (2,)
    with pytest.raises(ValueError, match="item_id"):
        simulator.latent([0, 1], [0, 5])
    with pytest.raises(ValueError, match="one length"):
        simulator.latent([0, 1], [0])
    with pytest.raises(TypeError, match="seed"):
        simulator.latent([0], [0], seed="0")


def test_a_trained_model_does_not_beat_the_attainable_truth():
    # A small world (each user and item seen often), so that a briefly trained model
    # closes most of the gap from the constant to the attainable AUC; it stays below it.
    # The standard error of an AUC a over at least m positives and m negatives is at
    # most sqrt(a(1 − a) / m) (Bamber, 1975).
    torch.set_num_threads(1)
    data = FeedSimulator(n_users=200, n_items=100).simulate(200_000, seed=0)
    towers = [
        sbmm.Tower("discovery", [sbmm.Objective("stay"), sbmm.Objective("click")]),
        sbmm.Tower("video", [sbmm.Objective("like", given="click")]),
    ]
    sbmm.seed_everything(0)
    model = sbmm.SharedBottom(data.feature_specs, towers)
    fit = dict(epochs=2, batch_size=2_048, lr=1e-2, seed=0, progress=False)
    sbmm.fit(model, data.train, **fit)
    test = data.test
    table = anchor_table(sbmm.predict(model, test), test, data.truth_specs)
    for name in ("stay", "click", "like"):
        row = table[name, "auc"]
        y = test.labels[name][data.truth_specs[name].rows(test)]
        m = min(float(y.sum()), float((1 - y).sum()))
        se = sum(math.sqrt(a * (1 - a) / m) for a in (row.model, row.attainable))
        assert row.model < row.attainable + 3 * se, row
        assert row.attainable < row.truth, "the noisy truth knows the noise"
        assert row.share > 0.5, f"{name}: the model learned little; a vacuous check"


def selection_gap(data) -> float:
    """Mean over clicked impressions of the true p(like | click) minus the attainable
    one: how much better clicked impressions like than the features predict."""
    t, clicked = data.truth, data.labels["click"].bool()
    gap = t["p_like_given_click"].double() - t["attainable_p_like_given_click"].double()
    return float(gap[clicked].mean())


def test_unobserved_selection_at_zero_changes_nothing():
    default, zero = (
        FeedSimulator(**knobs).simulate(3_000, seed=4)
        for knobs in ({}, {"unobserved_selection": 0.0})
    )
    for part in ("features", "labels", "truth"):
        for name, column in getattr(default, part).items():
            assert torch.equal(getattr(zero, part)[name], column), (part, name)
    with pytest.raises(ValueError, match="unobserved_selection"):
        FeedSimulator(unobserved_selection=-0.5)


def test_unobserved_selection_changes_only_the_click_and_like_lines():
    plain, selected = (
        FeedSimulator(unobserved_selection=s).simulate(5_000, seed=0) for s in (0, 1)
    )
    assert all(torch.equal(v, selected.features[k]) for k, v in plain.features.items())
    for name in ("p_stay", "stay_time_given_stay", "play_time_given_click"):
        for column in (name, "attainable_" + name):
            assert torch.equal(plain.truth[column], selected.truth[column]), column
    for name in ("p_click", "p_like_given_click"):
        assert not torch.equal(plain.truth[name], selected.truth[name]), name


def test_unobserved_selection_makes_clicked_impressions_like_more_than_predicted():
    # Given the features (the attainable truth), clicked impressions like as predicted
    # without it, and better the stronger the selection the features cannot see.
    n = 100_000
    gaps, ses = [], []
    for s in (0.0, 0.5, 1.0, 2.0):
        data = FeedSimulator(unobserved_selection=s).simulate(n, seed=0)
        t, clicked = data.truth, data.labels["click"].bool()
        gap = (t["p_like_given_click"] - t["attainable_p_like_given_click"]).double()
        gaps.append(selection_gap(data))
        ses.append(float(gap[clicked].std()) / math.sqrt(int(clicked.sum())))
    assert abs(gaps[0]) < 4 * ses[0], (gaps, ses)
    assert all(a + 4 * sa < b for a, b, sa in zip(gaps, gaps[1:], ses)), (gaps, ses)
    # over every impression the truth still averages to the attainable truth
    data = FeedSimulator(unobserved_selection=2.0).simulate(n, seed=1)
    for name in ("p_click", "p_like_given_click"):
        diff = (data.truth[name] - data.truth["attainable_" + name]).double()
        assert abs(float(diff.mean())) < 4 * float(diff.std()) / math.sqrt(n), name


@pytest.mark.parametrize("selection", [0.7, 2.0])
def test_attainable_truth_averages_over_the_unobserved_selection(selection):
    # The same impressions, with ε and u redrawn K times: u on the click and like
    # lines, shared by the two.
    n, draws, noise = 200, 4_000, 0.5
    simulator = FeedSimulator(unobserved_selection=selection)
    data = simulator.simulate(n, seed=0)
    f = data.features
    latent = simulator.latent(f["user_id"], f["item_id"], seed=0)
    attainable = latent.attainable(noise, selection)  # each (n,)
    attainable["p_click"] = attainable["p_stay"] * attainable["p_click_given_stay"]
    for name in TRUTH:  # the simulator's columns are these values
        column = torch.from_numpy(attainable[name].astype(np.float32))
        assert torch.equal(data.truth["attainable_" + name], column), name

    rng = np.random.default_rng(1)
    eps = noise * rng.standard_normal((5, draws, n))
    u = selection * rng.standard_normal((draws, n))
    eps[1] += u
    eps[2] += u
    truth = latent.truth(eps)  # each (K, n)
    truth["p_click"] = truth["p_stay"] * truth["p_click_given_stay"]
    noise_only = latent.attainable(noise)  # u left out: a wrong answer
    noise_only["p_click"] = noise_only["p_stay"] * noise_only["p_click_given_stay"]
    for name, value in truth.items():
        mean, se = value.mean(0), value.std(0) / math.sqrt(draws)  # (n,) each
        z = np.abs(mean - attainable[name]) / se
        assert z.max() < 5, f"{name}: Monte Carlo mean off by {z.max():.1f} SE"
        if name in ("p_click_given_stay", "p_like_given_click", "p_click"):
            z_wrong = np.abs(mean - noise_only[name]) / se
            assert z_wrong.max() > 10, f"{name}: too few draws to see u matter"


def test_duration_spread_changes_the_play_time_and_nothing_else():
    plain, spread = (
        FeedSimulator(duration_spread=d).simulate(5_000, seed=0) for d in (1.0, 3.0)
    )
    for name, column in plain.features.items():
        if name == "duration":  # a z-score of the log duration: equal to rounding
            torch.testing.assert_close(spread.features[name], column)
        else:
            assert torch.equal(spread.features[name], column), name
    for name in ("stay", "click", "like", "stay_time"):
        assert torch.equal(plain.labels[name], spread.labels[name]), name
    for name in ("p_stay", "stay_time_given_stay", "p_click", "p_like_given_click"):
        for column in (name, "attainable_" + name):
            assert torch.equal(plain.truth[column], spread.truth[column]), column
    log_mean = {  # the log of the expected play time after a click: (N,)
        d: data.truth["play_time_given_click"].double().log()
        for d, data in ((1, plain), (3, spread))
    }
    ratio = float(log_mean[3].std() / log_mean[1].std())
    assert 2.0 < ratio < 3.0, ratio  # durations 3 times as spread, fractions the same


def test_duration_spread_decouples_watch_time_from_clicks():
    """Spearman of the true p_click with the true expected play time per impression:
    0.94 in the default world, falling as durations spread."""
    rho = []
    for d in (1.0, 2.0, 3.0):
        t = FeedSimulator(duration_spread=d).simulate(50_000, seed=0).truth
        watch = t["p_click"].double() * t["play_time_given_click"].double()
        rho.append(spearmanr(t["p_click"].numpy(), watch.numpy())[0])
    assert rho[0] > 0.9, rho
    assert rho[0] > rho[1] + 0.05 > rho[2] + 0.1 and rho[2] < 0.8, rho
