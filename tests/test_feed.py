"""The feed simulator: causal structure, labels drawn from the truth, rates, knobs, declarations."""

import math

import pytest
import torch

import sbmm
from sbmm.data import FeedConfig, FeedSimulator

N = 200_000


@pytest.fixture(scope="module")
def data():
    return FeedSimulator().simulate(N, seed=0)


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.double(), b.double()]))[0, 1])


def like_gap(data) -> float:
    """Mean P(like | click) over clicked impressions minus its mean over all impressions."""
    p_like, clicked = data.truth["p_like_given_click"].double(), data.labels["click"].bool()
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


def _within_four_se(observed: torch.Tensor, expected: torch.Tensor, variance: torch.Tensor) -> None:
    """Mean of independent draws `observed` against the mean of their expectations, given their variances."""
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
    _within_four_se(y["play_time"][clicked], play, play**2 * math.expm1(c.play_time_sigma**2))
    stay = t["stay_time_given_stay"][stayed].double()
    _within_four_se(y["stay_time"][stayed], stay, stay**2 * math.expm1(c.stay_time_sigma**2))


def test_default_rates_are_realistic(data):
    y = data.labels
    clicked, stayed = y["click"].bool(), y["stay"].bool()
    assert 0.30 <= y["stay"].mean() <= 0.50
    assert 0.05 <= y["click"].mean() <= 0.15
    assert 0.05 <= y["like"][clicked].mean() <= 0.20
    for time, rows in ((y["stay_time"], stayed), (y["play_time"], clicked)):
        assert time[rows].mean() > 1.3 * time[rows].median(), "times are heavy-tailed (mean well above median)"


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
    assert set(data.truth) == {
        "p_stay", "stay_time_given_stay", "p_click", "play_time_given_click", "p_like_given_click"
    }


def test_tags_are_distinct_padded_sets_of_one_or_more(data):
    tags = data.features["tags"].long()  # (N, L)
    present = tags >= 0
    assert present[:, 0].all(), "every item has at least one tag"
    assert (present[:, :-1] | ~present[:, 1:]).all(), "padding (-1) only after the tags"
    assert (tags[~present] == -1).all()
    n_present = present.sum(1)
    n_distinct = torch.tensor([len(set(row[row >= 0].tolist())) for row in tags[:2_000]])
    assert torch.equal(n_distinct, n_present[:2_000])
    assert set(n_present.unique().tolist()) == set(range(1, data.config.max_tags + 1))


def test_feature_specs_build_a_model_that_runs_on_the_data(data):
    towers = [
        sbmm.Tower("discovery", [
            sbmm.Objective("stay"),
            sbmm.Objective("stay_time", kind="regression", mask="stay"),
            sbmm.Objective("click"),
        ]),
        sbmm.Tower("video", [
            sbmm.Objective("play_time", kind="regression", mask="click"),
            sbmm.Objective("like", mask="click"),
        ]),
    ]
    model = sbmm.SharedBottom(data.feature_specs, towers)
    sbmm.check_labels(towers, data.train)
    with torch.no_grad():
        out = model(data.train.features)
    assert set(out) == {"stay", "stay_time", "click", "play_time", "like"}
    assert all(v.shape == (len(data.train),) and torch.isfinite(v).all() for v in out.values())
    vocab = {f.name: f.vocab_size for f in data.feature_specs if hasattr(f, "vocab_size")}
    assert vocab["user_id"] == data.config.n_users and vocab["tags"] == data.config.n_tags


def test_split_and_device_move(data):
    parts = (data.train, data.valid, data.test)
    assert [len(p) for p in parts] == [0.8 * N, 0.1 * N, 0.1 * N]
    # A shuffle of the rows: column sums are preserved.
    assert sum(float(p.labels["click"].sum()) for p in parts) == float(data.labels["click"].sum())
    assert len(data) == N
    moved = data.to("meta")
    assert all(b.device.type == "meta" for b in (moved.batch, moved.train, moved.valid, moved.test))
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
        r.append(pearson(torch.logit(t["p_click"].double()), torch.logit(t["p_like_given_click"].double())))
    assert all(a + 0.1 < b for a, b in zip(r, r[1:])), r
    assert r[0] < -0.3 and r[-1] > 0.3


def test_clickbait_makes_clicked_items_a_biased_sample_of_quality():
    # Unrelated tasks: clicks select on quality only through bait.
    unbiased, baited = (
        like_gap(FeedSimulator(task_correlation=0.0, clickbait=cb).simulate(50_000, seed=0)) for cb in (0.0, 2.0)
    )
    assert baited < 0 and abs(baited) > 3 * abs(unbiased), (unbiased, baited)
    # Related tasks: clicked items are better than average without bait, worse with much of it.
    honest, bait_heavy = (like_gap(FeedSimulator(clickbait=cb).simulate(50_000, seed=0)) for cb in (0.0, 3.0))
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
