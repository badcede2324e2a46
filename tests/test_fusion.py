import numpy as np
import pytest
from sklearn.metrics import ndcg_score, roc_auc_score

from sbmm import fusion
from sbmm.data import FeedSimulator
from sbmm.fusion import (
    SEARCHES,
    UTILITY,
    Utility,
    gauc,
    joint,
    ndcg,
    product,
    rank_fusion,
    reciprocal_ranks,
    search,
    truth_inputs,
    weighted_sum,
)

# One request, three candidates: a clickbait card, a middling one, a quality one.
CLICK = np.array([[0.30, 0.20, 0.10]])
LIKE = np.array([[0.05, 0.30, 0.60]])
P = {"click": CLICK, "like": LIKE}


def order(scores: np.ndarray) -> list[int]:
    """The candidates of the one request, best first."""
    return np.argsort(-scores[0], kind="stable").tolist()


def test_weighted_sum_moves_from_the_click_order_to_the_like_order():
    assert order(weighted_sum(P, {"click": 1.0})) == [0, 1, 2]
    assert order(weighted_sum(P, {"click": 1.0, "like": 1.0})) == [2, 1, 0]
    assert weighted_sum(P, {"click": 2.0, "like": 1.0}) == pytest.approx(
        np.array([[0.65, 0.70, 0.80]])
    )


def test_product_ranks_by_the_weighted_sum_of_logs():
    # p_click · p_like: 0.015, 0.06, 0.06: the two last tie; click^2 · like breaks it
    scores = product(P, {"click": 2.0, "like": 1.0})
    assert scores == pytest.approx(2 * np.log(CLICK) + np.log(LIKE))
    assert order(scores) == [1, 2, 0]
    assert order(product(P, {"click": 1.0, "like": 0.1})) == [0, 1, 2]


def test_rank_fusion_reads_only_each_objectives_order():
    scores = rank_fusion(P, {"click": 2.0, "like": 1.0}, k=1.0)
    # click ranks 1, 2, 3; like ranks 3, 2, 1
    assert scores == pytest.approx(np.array([[2 / 2 + 1 / 4, 1.0, 2 / 4 + 1 / 2]]))
    squashed = {"click": CLICK**3, "like": 10 * LIKE}  # same orders, other scales
    assert rank_fusion(squashed, {"click": 2.0, "like": 1.0}, k=1.0) == pytest.approx(
        scores
    )


@pytest.fixture(scope="module")
def requests():
    return FeedSimulator().requests(200, n_candidates=20, seed=0, stream=1)


def test_the_expected_utility_of_the_true_inputs_is_the_true_ranking(requests):
    truth = truth_inputs(requests)
    gains = UTILITY.expected(truth)
    assert gains.shape == (200, 20) and (gains > 0).all()
    assert ndcg(UTILITY.expected(truth), gains, k=10) == pytest.approx(1.0)
    assert ndcg(truth["click"], gains, k=10) < 0.99  # click alone is not the utility
    other = Utility(play=0.0, like=0.0)  # another utility: another order
    assert ndcg(other.expected(truth), gains, k=10) < 0.99
    expected = (
        truth["stay"] * truth["stay_time"]
        + UTILITY.play * truth["click"] * truth["play_time"]
        + UTILITY.like * truth["click"] * truth["like"]
    )
    assert gains == pytest.approx(expected)


def test_ndcg_and_gauc_are_scikit_learns_per_request_metrics():
    rng = np.random.default_rng(0)
    gains, scores = rng.random((50, 8)), rng.normal(size=(50, 8))
    assert ndcg(scores, gains, k=3) == pytest.approx(ndcg_score(gains, scores, k=3))
    labels = (rng.random((50, 8)) < 0.3).astype(float)
    labels[0] = 0  # a request without a positive is left out
    scores[:, :2] = np.round(scores[:, :2])  # with ties
    per_request = [roc_auc_score(y, s) for y, s in zip(labels, scores) if 0 < y.sum()]
    assert gauc(scores, labels) == pytest.approx(np.mean(per_request))
    assert np.isnan(gauc(scores, np.zeros_like(scores)))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: weighted_sum(P, {"watch": 1.0}), r"no prediction for \['watch'\]"),
        (
            lambda: weighted_sum({**P, "like": LIKE[0]}, {"click": 1, "like": 1}),
            "shape",
        ),
        (lambda: ndcg(CLICK, -LIKE), "gains must be >= 0"),
        (lambda: ndcg(CLICK, LIKE[:, :2]), "must both be"),
        (lambda: ndcg(CLICK * np.nan, LIKE), "finite"),
        (lambda: gauc(CLICK, 2 * LIKE), "labels must be 0 or 1"),
        (lambda: UTILITY.expected(P), "no prediction for"),
    ],
)
def test_bad_input_is_refused_naming_it(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_requests_are_a_user_and_distinct_candidates_of_the_world(requests):
    f = requests.batch.features
    assert len(requests) == 200 and len(requests.batch) == 200 * 20
    users = requests.grid(f["user_id"])
    items = requests.grid(f["item_id"])
    assert (users == users[:, :1]).all()  # one user per request
    assert all(len(set(row)) == 20 for row in items)  # distinct candidates
    # the same world as simulate(·, seed=0): the truth of each (user, item) pair
    simulator = FeedSimulator()
    latent = simulator.latent(users.ravel().astype(int), items.ravel().astype(int), 0)
    attainable = latent.attainable(simulator.config.noise)
    assert requests.grid(
        requests.batch.truth["attainable_p_like_given_click"]
    ).ravel() == pytest.approx(attainable["p_like_given_click"], rel=1e-5)
    again = simulator.requests(200, n_candidates=20, seed=0, stream=1)
    other = simulator.requests(200, n_candidates=20, seed=0, stream=2)
    assert (again.grid(again.batch.features["item_id"]) == items).all()
    assert (other.grid(other.batch.features["item_id"]) != items).any()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"n_requests": 0}, "n_requests must be an integer >= 1"),
        ({"n_requests": 5, "n_candidates": 1}, "n_candidates must be an integer >= 2"),
        ({"n_requests": 5, "n_candidates": 500}, "at most n_items"),
        ({"n_requests": 5, "stream": -1}, "stream must be an integer >= 0"),
    ],
)
def test_bad_requests_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        FeedSimulator().requests(**options)


def test_a_grid_needs_one_value_per_candidate(requests):
    with pytest.raises(ValueError, match=r"one value per candidate"):
        requests.grid(np.zeros(7))
    assert fusion.INPUTS.keys() == truth_inputs(requests).keys()


NAN_CLICK = np.array([[0.30, np.nan, 0.10]])


@pytest.mark.parametrize(
    "call",
    [
        lambda: weighted_sum({**P, "click": NAN_CLICK}, {"click": 1, "like": 1}),
        lambda: product({**P, "click": NAN_CLICK}, {"click": 1, "like": 1}),
        lambda: rank_fusion({**P, "click": NAN_CLICK}, {"click": 1, "like": 1}),
    ],
)
def test_nan_predictions_are_refused_naming_the_objective(call):
    with pytest.raises(ValueError, match="predictions of 'click' must be finite"):
        call()


def test_gauc_ndcg_and_the_utility_refuse_nan():
    with pytest.raises(ValueError, match="scores must be finite, but hold 1 NaN"):
        gauc(NAN_CLICK, np.array([[1, 0, 1]]))
    with pytest.raises(ValueError, match="gains must be finite"):
        ndcg(CLICK, NAN_CLICK)
    with pytest.raises(ValueError, match="Utility like must be a finite number"):
        Utility(like=float("nan"))
    with pytest.raises(ValueError, match="the weight of 'like' must be a finite"):
        weighted_sum(P, {"click": 1.0, "like": float("nan")})


def test_the_product_refuses_predictions_that_are_not_positive():
    negative = {**P, "like": -LIKE}
    with pytest.raises(ValueError, match="predictions of 'like' must be positive"):
        product(negative, {"click": 1.0, "like": 0.5})
    zero = {**P, "like": 0 * LIKE}
    with pytest.raises(ValueError, match="the lowest is 0"):
        product(zero, {"click": 1.0, "like": 0.5})
    # at weight 0 an objective is not part of the product
    assert order(product(negative, {"click": 1.0, "like": 0.0})) == [0, 1, 2]


@pytest.mark.parametrize("k", [-1.0, float("nan"), "60", True])
def test_rank_fusion_refuses_a_k_that_is_not_a_number_at_least_0(k):
    with pytest.raises(ValueError, match=f"k must be a finite number >= 0, got {k!r}"):
        rank_fusion(P, {"click": 1.0}, k=k)


def test_the_utility_is_the_weighted_sum_of_the_joint_terms_at_its_weights(requests):
    truth = truth_inputs(requests)
    terms = joint(truth)
    assert terms["play_time"] == pytest.approx(truth["click"] * truth["play_time"])
    assert terms["like"] == pytest.approx(truth["click"] * truth["like"])
    assert terms["stay_time"] == pytest.approx(truth["stay"] * truth["stay_time"])
    assert terms["click"] == pytest.approx(truth["click"])  # not given anything
    gains = UTILITY.expected(truth)
    by_joint = weighted_sum(terms, UTILITY.weights)
    assert by_joint == pytest.approx(gains)
    assert (np.argsort(-by_joint, 1) == np.argsort(-gains, 1)).all()  # same order
    # the same weights on the heads (conditionals) rank otherwise
    assert ndcg(weighted_sum(truth, UTILITY.weights), gains, k=10) < 0.99


def test_joint_needs_what_each_input_is_given():
    with pytest.raises(ValueError, match=r"\['like'\] need the predictions of what"):
        joint({"like": LIKE})
    assert joint({"click": CLICK, "like": LIKE})["like"] == pytest.approx(CLICK * LIKE)


def test_rank_fusion_is_the_weighted_sum_of_reciprocal_ranks():
    weights = {"click": 2.0, "like": 1.0}
    ranks = reciprocal_ranks(P, k=1.0)
    assert ranks["click"] == pytest.approx(np.array([[1 / 2, 1 / 3, 1 / 4]]))
    assert rank_fusion(P, weights, k=1.0) == pytest.approx(weighted_sum(ranks, weights))


def test_ndcg_counts_a_request_without_gains_as_0_and_reads_k_past_the_end():
    rng = np.random.default_rng(1)
    gains, scores = rng.random((20, 6)), rng.normal(size=(20, 6))
    gains[3] = 0.0
    for k in (1, 4, 6, 9):
        assert ndcg(scores, gains, k=k) == pytest.approx(ndcg_score(gains, scores, k=k))
    with pytest.raises(ValueError, match="k must be an integer >= 1, got 0"):
        ndcg(scores, gains, k=0)


def bowl(point):  # highest (0) at x = 0.3, y = -1
    return -((point["x"] - 0.3) ** 2) - (point["y"] + 1.0) ** 2


BOUNDS = {"x": (-2.0, 2.0), "y": (-2.0, 2.0)}


@pytest.mark.parametrize("method", [m for m in SEARCHES if m != "gp"])
def test_every_search_climbs_the_bowl_and_keeps_every_evaluation(method):
    found = search(bowl, BOUNDS, method, 100, seed=0)
    assert found.names == ("x", "y") and found.points.shape == (100, 2)
    assert found.values == pytest.approx(
        [bowl(dict(zip("xy", p))) for p in found.points]
    )
    assert (np.abs(found.points) <= 2).all()
    assert bowl(found.best) == found.values.max() > -0.1
    assert (np.diff(found.best_so_far()) >= 0).all()
    assert found.best_so_far()[-1] == found.values.max()
    again = search(bowl, BOUNDS, method, 100, seed=0)
    other = search(bowl, BOUNDS, method, 100, seed=1)
    assert (again.values == found.values).all()  # seeded: it repeats exactly
    assert (other.values != found.values).any()


def test_the_gaussian_process_search_proposes_from_its_model_and_repeats():
    # 10 random draws start it; each later proposal refits the process (slow: one)
    found = search(bowl, BOUNDS, "gp", 11, seed=0)
    assert found.points.shape == (11, 2) and (np.abs(found.points) <= 2).all()
    again = search(bowl, BOUNDS, "gp", 11, seed=0)
    assert (again.values == found.values).all()


def test_evaluations_to_counts_until_the_target_is_first_reached():
    found = fusion.Search(("x",), np.zeros((4, 1)), np.array([0.1, 0.5, 0.3, 0.9]))
    assert found.evaluations_to(0.4) == 2
    assert found.evaluations_to(0.9) == 4
    assert found.evaluations_to(1.0) == float("inf")
    assert found.best_so_far() == pytest.approx([0.1, 0.5, 0.5, 0.9])


def test_a_bayesian_search_needs_fewer_evaluations_than_random_draws():
    needed = {
        m: np.median(
            [
                search(bowl, BOUNDS, m, 100, seed=s).evaluations_to(-0.02)
                for s in range(5)
            ]
        )
        for m in ("tpe", "random")
    }
    assert needed["tpe"] < needed["random"]


def test_a_search_leaves_optunas_log_level_as_it_found_it():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.INFO)
    search(bowl, BOUNDS, "tpe", 3, seed=0)
    assert optuna.logging.get_verbosity() == optuna.logging.INFO


@pytest.mark.parametrize(
    "options, message",
    [
        ({"method": "grid"}, "method must be one of"),
        ({"evaluations": 0}, "evaluations must be an integer >= 1"),
        ({"bounds": {"x": (1.0, 1.0)}}, "low < high"),
        ({"bounds": {}}, "bounds must map names"),
    ],
)
def test_bad_searches_are_refused(options, message):
    given = {"bounds": BOUNDS, "method": "random", "evaluations": 5, **options}
    with pytest.raises(ValueError, match=message):
        search(bowl, given["bounds"], given["method"], given["evaluations"], seed=0)
