import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402
from scipy import stats  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from sbmm.compare import (  # noqa: E402
    Comparison,
    TestRows,
    bonferroni,
    compare,
    mean_interval,
)
from sbmm.plot import plot_paired  # noqa: E402

REPEATS, SEEDS, TRUE_DIFFERENCE = 400, 10, 0.01


def paired_scores(rng: np.random.Generator, n: int = SEEDS) -> tuple:
    """Scores of A and B over n seeds: a shared per-seed effect (which pairing removes),
    independent noise per model, and A better by TRUE_DIFFERENCE on average."""
    seed_effect = rng.normal(0.0, 0.02, n)
    a = 0.75 + seed_effect + TRUE_DIFFERENCE + rng.normal(0.0, 0.01, n)
    b = 0.75 + seed_effect + rng.normal(0.0, 0.01, n)
    return a, b


@pytest.fixture(scope="module")
def experiments() -> list:
    """REPEATS simulated experiments of SEEDS seeds, from a seeded Generator."""
    rng = np.random.default_rng(20240601)
    return [paired_scores(rng) for _ in range(REPEATS)]


def test_interval_covers_true_difference_at_nominal_rate(experiments):
    covered = [
        low <= TRUE_DIFFERENCE <= high
        for low, high in (compare(a, b).interval for a, b in experiments)
    ]
    standard_error = math.sqrt(0.95 * 0.05 / REPEATS)
    assert abs(np.mean(covered) - 0.95) <= 3 * standard_error


def test_verdict_is_indistinguishable_exactly_when_interval_contains_zero(
    experiments,
):
    verdicts = []
    for a, b in experiments:
        c = compare(a, b)
        low, high = c.interval
        if low <= 0 <= high:
            assert c.verdict == "indistinguishable"
        else:
            assert c.verdict == ("better" if low > 0 else "worse")
        verdicts.append(c.verdict)
    # The simulated difference is about one interval half-width: both outcomes occur.
    assert {"better", "indistinguishable"} <= set(verdicts)


def test_lower_is_better_flips_the_verdict(experiments):
    flipped = {"better": "worse", "worse": "better"}
    for a, b in experiments[:50]:
        higher, lower = compare(a, b), compare(a, b, higher_is_better=False)
        assert lower.interval == higher.interval
        assert lower.verdict == flipped.get(higher.verdict, higher.verdict)
    loss = compare([0.30, 0.31, 0.29], [0.40, 0.42, 0.41], higher_is_better=False)
    assert loss.verdict == "better"


def test_matches_scipy_paired_t_interval():
    a = np.array([0.812, 0.809, 0.820, 0.815, 0.811])
    b = np.array([0.801, 0.805, 0.806, 0.810, 0.799])
    c = compare(a, b, level=0.9)
    expected = stats.ttest_rel(a, b).confidence_interval(confidence_level=0.9)
    assert c.interval == pytest.approx((expected.low, expected.high))
    assert c.mean == pytest.approx(np.mean(a - b))
    assert c.n == 5 and c.differences == pytest.approx(tuple(a - b))


def test_equal_differences_give_zero_width_interval():
    c = compare([1.5, 2.5, 3.5], [1.0, 2.0, 3.0])
    assert c.interval == (0.5, 0.5) and c.mean == 0.5 and c.verdict == "better"
    tie = compare([1.0, 2.0], [1.0, 2.0])
    assert tie.interval == (0.0, 0.0) and tie.verdict == "indistinguishable"


def test_sequences_arrays_and_tensors_agree():
    a, b = [0.71, 0.74, 0.69, 0.72], [0.70, 0.71, 0.70, 0.69]
    expected = compare(a, b)
    assert compare(np.array(a), np.array(b)) == expected
    tensor_a = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    assert compare(tensor_a, torch.tensor(b, dtype=torch.float64)) == expected


def test_dicts_pair_by_seed_key():
    a = {0: 0.80, 1: 0.82, 2: 0.81, 3: 0.83}
    b = {3: 0.80, 1: 0.80, 0: 0.79, 2: 0.80}  # the same seeds, in another order
    c = compare(a, b)
    assert c.differences == pytest.approx((0.01, 0.02, 0.01, 0.03))
    assert c == compare([0.80, 0.82, 0.81, 0.83], [0.79, 0.80, 0.80, 0.80])


def test_dicts_with_different_seeds_are_refused():
    with pytest.raises(ValueError, match=r"only in A: \[2\], only in B: \[5\]"):
        compare({0: 0.8, 1: 0.9, 2: 0.7}, {0: 0.8, 1: 0.9, 5: 0.7})
    with pytest.raises(ValueError, match="new is a dict .* but old is not"):
        compare({0: 0.8, 1: 0.9}, [0.8, 0.9], names=("new", "old"))


@pytest.mark.parametrize(
    "a, b, message",
    [
        ([0.8, float("nan"), 0.7], [0.8, 0.9, 0.7], "new has non-finite .* positions"),
        ([0.8, 0.9, 0.7], [0.8, float("inf"), 0.7], "old has non-finite"),
        ({3: 0.8, 4: 0.7}, {3: float("nan"), 4: 0.7}, r"old .* at seeds \[3\]"),
        (["0.8", "0.9"], [0.8, 0.9], "scores of new must be real numbers"),
        ([0.8, 0.9], [0.8, None], "scores of old must be real numbers"),
        ([[0.8, 0.9]], [0.8, 0.9], "scores of new must be one-dimensional"),
        ([0.8, 0.9, 0.7], [0.8, 0.9], "new has 3 scores but old has 2"),
        ([0.8], [0.7], "new and old need scores from at least 2 seeds, got 1"),
    ],
)
def test_bad_scores_are_refused_naming_the_side(a, b, message):
    with pytest.raises(ValueError, match=message):
        compare(a, b, names=("new", "old"))


@pytest.mark.parametrize("level", [0, 1, 1.5, -0.1, float("nan"), "95%"])
def test_level_must_be_between_0_and_1(level):
    with pytest.raises(ValueError, match="level"):
        compare([0.8, 0.9], [0.7, 0.8], level=level)


def test_str_reads_as_one_line():
    c = Comparison(
        mean=0.01234,
        interval=(0.00812, 0.01651),
        level=0.95,
        differences=(0.01,) * 10,
        verdict="better",
        names=("MMoE", "SB"),
    )
    expected = "MMoE − SB = +0.0123 (95% CI +0.0081 to +0.0165, 10 seeds): better"
    assert str(c) == expected
    assert c.format(decimals=2).startswith("MMoE − SB = +0.01 (95% CI +0.01 to +0.02")
    assert "90% CI -0.5000 to -0.5000" in str(compare([1, 2], [1.5, 2.5], level=0.9))


def test_plot_paired_draws_a_point_per_seed_and_an_error_bar():
    rng = np.random.default_rng(0)
    pairs = {"click AUC": paired_scores(rng), "like AUC": paired_scores(rng, n=7)}
    _, ax = plt.subplots()
    assert plot_paired(pairs, names=("MMoE", "SB"), ax=ax) is ax
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert [len(c.get_offsets()) for c in points] == [SEEDS, 7]
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2
    assert ax.get_ylabel().startswith("MMoE − SB")
    # The points are the differences, at deterministic jitter around each column.
    a, b = pairs["click AUC"]
    assert np.asarray(points[0].get_offsets())[:, 1] == pytest.approx(a - b)
    _, again = plt.subplots()
    plot_paired(pairs, names=("MMoE", "SB"), ax=again)
    assert np.array_equal(again.collections[0].get_offsets(), points[0].get_offsets())
    plt.close("all")


def test_plot_paired_single_comparison_and_comparison_objects():
    a, b = [0.80, 0.82, 0.81], [0.79, 0.81, 0.795]
    ax = plot_paired(a, b, title="one")
    (points,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(points.get_offsets()) == 3 and ax.get_title() == "one"
    ax = plot_paired({"stored": compare(a, b, names=("new", "old"))})
    assert [t.get_text() for t in ax.get_xticklabels()] == ["stored\nbetter"]
    assert ax.get_ylabel() == "new − old per seed"
    with pytest.raises(ValueError, match="dict"):
        plot_paired({})
    plt.close("all")


def test_plot_paired_horizontal_puts_each_comparison_on_a_row_top_down():
    rng = np.random.default_rng(1)
    pairs = {"click AUC": paired_scores(rng), "like AUC": paired_scores(rng, n=7)}
    ax = plot_paired(pairs, names=("MMoE", "SB"), horizontal=True)
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    a, b = pairs["like AUC"]
    offsets = np.asarray(points[1].get_offsets())
    assert offsets[:, 0] == pytest.approx(a - b)  # the differences run along x
    assert np.all(np.abs(offsets[:, 1] - 1) <= 0.15)  # on the second row
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0].startswith("click AUC: ") and labels[1].startswith("like AUC: ")
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # the first comparison on top
    assert ax.get_xlabel().startswith("MMoE − SB")
    title = "a title wider than the plot beside its labels"
    ax = plot_paired(pairs, names=("MMoE", "SB"), horizontal=True, title=title)
    assert ax.figure.get_suptitle() == title and ax.get_title() == ""
    plt.close("all")


def test_prose_quotes_the_mean_and_interval_at_the_given_decimals():
    c = compare([0.3, 0.5, 0.4], [0.1, 0.1, 0.1], names=("MMoE", "SB"))
    low, high = c.interval
    assert c.prose() == f"{c.mean:+.3f} (95% CI {low:+.3f} to {high:+.3f})"
    assert c.prose(1) == f"+0.3 (95% CI {low:+.1f} to {high:+.1f})"


def test_a_summary_longer_than_the_column_breaks_before_the_interval():
    short = compare([0.3, 0.5, 0.4], [0.1, 0.1, 0.1], names=("MMoE", "SB"))
    assert "\n" not in short.format() and len(short.format()) <= 88
    names = ("scene 2 weighted 0.1, rho = +0.7", "scene 1 only, rho = +0.7, lr 0.003")
    long = compare([0.3, 0.5, 0.4], [0.1, 0.1, 0.1], names=names)
    head, tail = long.format().split("\n")
    assert head == f"{names[0]} − {names[1]} = {long.mean:+.4f}"
    assert tail.startswith("    (95% CI ") and tail.endswith("3 seeds): better")
    labelled = short.format(2, label="click, rho = +0.7, equal tower weights")
    assert labelled.startswith(
        "click, rho = +0.7, equal tower weights: MMoE − SB = +0.30"
    )
    assert all(len(line) <= 88 for line in labelled.split("\n"))


def test_mean_interval_is_the_interval_compare_puts_around_a_mean():
    scores = np.array([0.71, 0.74, 0.69, 0.72, 0.70])
    expected = stats.ttest_1samp(scores, 0.0).confidence_interval(0.9)
    low, high = mean_interval(scores, level=0.9)
    assert (low, high) == pytest.approx((expected.low, expected.high))
    assert (low, high) == compare(scores, np.zeros(5), level=0.9).interval
    assert mean_interval([2.0, 2.0, 2.0]) == (2.0, 2.0)


@pytest.mark.parametrize(
    "scores, level", [([1.0], 0.95), ([1.0, math.nan], 0.95), ([1.0, 2.0], 1.5)]
)
def test_mean_interval_refuses_too_few_non_finite_scores_and_a_bad_level(scores, level):
    with pytest.raises(ValueError):
        mean_interval(scores, level=level)


@pytest.mark.parametrize("flag", ["yes", "no", 1, None])
def test_higher_is_better_must_be_a_bool(flag):
    with pytest.raises(
        TypeError, match=f"higher_is_better must be True or False, got {flag!r}"
    ):
        compare([1.0, 2.0, 3.0], [0.0, 1.0, 1.5], higher_is_better=flag)
    verdict = compare([1.0, 2.0, 3.0], [0.0, 1.0, 1.5], higher_is_better=np.bool_(0))
    assert verdict.verdict == "worse" and verdict.higher_is_better is False


# Test rows as well as seeds: a binormal world where the truth is known. A row's latent
# score z carries the label with mean MU, a second feature v with mean MV; model A
# reads v with weight GAMMA_A, model B with GAMMA_B (a systematic difference, shared by
# every seed and carried by the rows drawn); seed k adds c_k · u (a seed effect shared
# by both models) and each model and seed its own noise.
MU, MV, ROWS = 1.0, 1.0, 1000


def population_auc(c: np.ndarray, gamma: float, noise: float) -> np.ndarray:
    """AUC of z + gamma · v + c · u + noise · ε over the whole population."""
    spread = np.sqrt(2 * (1 + gamma**2 + c**2 + noise**2))
    return stats.norm.cdf((MU + gamma * MV) / spread)


def true_aucs(seed_sd: float, gamma_a: float, gamma_b: float, noise: float):
    """E over seeds of the population AUC of A, and of A's minus B's
    (Gauss-Hermite)."""
    x, w = np.polynomial.hermite_e.hermegauss(60)
    a = population_auc(seed_sd * x, gamma_a, noise)
    b = population_auc(seed_sd * x, gamma_b, noise)
    return float((w * a).sum() / w.sum()), float((w * (a - b)).sum() / w.sum())


def scored_world(rng, seed_sd, gamma_a, gamma_b, noise, seeds=SEEDS, draws=200):
    """One experiment: ROWS test rows, both models' RowAUC over `seeds` seeds."""
    y = rng.random(ROWS) < 0.2
    z, v, u = rng.normal(size=(3, ROWS)) + np.array([[MU], [MV], [0]]) * y
    c = rng.normal(0, seed_sd, (seeds, 1))
    a = z + gamma_a * v + c * u + noise * rng.normal(size=(seeds, ROWS))
    b = z + gamma_b * v + c * u + noise * rng.normal(size=(seeds, ROWS))
    rows = TestRows(y, draws=draws, seed=int(rng.integers(2**31)))
    return rows.auc(a), rows.auc(b)


def test_test_rows_score_every_resampling_as_sklearn_does():
    rng = np.random.default_rng(3)
    y = rng.random(300) < 0.2
    scores = rng.normal(size=(3, 300)).round(1)  # rounded: many ties
    rows = TestRows(torch.tensor(y), draws=100, seed=7)
    auc = rows.auc(torch.tensor(scores))
    assert auc.values == pytest.approx([roc_auc_score(y, s) for s in scores])
    drawn = np.random.default_rng(7).integers(0, 300, (100, 300))  # the same draws
    for draw in (0, 1, 99):
        idx = drawn[draw]
        expected = [roc_auc_score(y[idx], s[idx]) for s in scores]
        assert auc.draws[draw] == pytest.approx(expected)
    assert auc.draws.shape == (100, 3) and len(rows) == 300 and rows.draws == 100
    one = rows.auc(scores[0])  # one seed's (rows,) scores
    assert one.values == pytest.approx(auc.values[:1])


@pytest.fixture(scope="module")
def row_experiments() -> dict:
    """Per world, 150 experiments: (A − B over rows and seeds, A − B over seeds alone,
    A's mean AUC over rows and seeds), and the truths (A's AUC, A − B)."""
    worlds = {  # (seed sd, gamma A, gamma B, each model's own noise)
        "rows matter": (0.3, 0.6, 0.4, 0.1),
        "seeds only": (0.5, 0.5, 0.5, 0.3),
    }
    rng = np.random.default_rng(20240602)
    experiments = {}
    for name, world in worlds.items():
        runs = []
        for _ in range(150):
            a, b = scored_world(rng, *world)
            runs.append((compare(a, b), compare(a.values, b.values), mean_interval(a)))
        experiments[name] = (runs, true_aucs(*world))
    return experiments


def test_rows_and_seeds_interval_covers_the_truth_at_its_nominal_rate(
    row_experiments,
):
    standard_error = math.sqrt(0.95 * 0.05 / 150)
    for runs, (auc, gap) in row_experiments.values():
        covered = [r.interval[0] <= gap <= r.interval[1] for r, _, _ in runs]
        assert abs(np.mean(covered) - 0.95) <= 3 * standard_error
        covered = [low <= auc <= high for _, _, (low, high) in runs]
        assert abs(np.mean(covered) - 0.95) <= 3 * standard_error
    # Where the models differ on which rows they rank well, the seeds' interval alone
    # misses the truth far more often than 5% of the time.
    runs, (_, gap) = row_experiments["rows matter"]
    seeds_only = [s.interval[0] <= gap <= s.interval[1] for _, s, _ in runs]
    assert np.mean(seeds_only) < 0.85


def test_rows_widen_the_interval_only_where_they_add_noise(row_experiments):
    def widening(runs):
        return np.median([np.ptp(r.interval) / np.ptp(s.interval) for r, s, _ in runs])

    assert widening(row_experiments["rows matter"][0]) > 1.5
    # Each seed's own row noise is in the seeds' spread already: not counted twice.
    assert widening(row_experiments["seeds only"][0]) < 1.15
    r, s, _ = row_experiments["rows matter"][0][0]
    assert r.mean == s.mean and r.differences == s.differences and r.rows == ROWS


def test_bonferroni_levels_and_the_intervals_they_give():
    assert bonferroni(0.95, 1) == 0.95
    assert bonferroni(0.95, 9) == pytest.approx(1 - 0.05 / 9)
    assert bonferroni(0.9, 4) == pytest.approx(0.975)
    a = np.array([0.812, 0.809, 0.820, 0.815, 0.811])
    b = np.array([0.801, 0.805, 0.806, 0.810, 0.799])
    c = compare(a, b, family=5)
    expected = stats.ttest_rel(a, b).confidence_interval(confidence_level=0.99)
    assert c.interval == pytest.approx((expected.low, expected.high))
    assert c.level == 0.95 and c.family == 5
    assert c.prose(3).endswith(", Bonferroni over 5)")


def test_bonferroni_intervals_hold_together_at_the_family_level():
    rng = np.random.default_rng(11)
    family, repeats = 5, 300
    together, alone = [], []
    for _ in range(repeats):
        pairs = [paired_scores(rng) for _ in range(family)]
        adjusted = [compare(a, b, family=family).interval for a, b in pairs]
        plain = [compare(a, b).interval for a, b in pairs]
        together.append(all(lo <= TRUE_DIFFERENCE <= hi for lo, hi in adjusted))
        alone.append(all(lo <= TRUE_DIFFERENCE <= hi for lo, hi in plain))
    standard_error = math.sqrt(0.95 * 0.05 / repeats)
    assert np.mean(together) >= 0.95 - 3 * standard_error
    assert np.mean(alone) < 0.85  # about 0.95 ** 5 = 0.77 without the correction


def test_a_summary_counting_rows_says_so():
    rng = np.random.default_rng(5)
    a, b = scored_world(rng, 0.5, 0.6, 0.4, 0.3)
    c = compare(a, b, names=("MMoE", "single-task"), family=9)
    head, tail = c.format(4).split("\n")
    assert head.startswith("MMoE − single-task = ")
    assert tail.endswith(f"Bonferroni over 9, {SEEDS} seeds × 1,000 test rows): better")


@pytest.mark.parametrize(
    "labels, draws, message",
    [
        ([0, 1, 2, 1], 100, "must be 0 or 1"),
        ([1, 1, 1, 1], 100, "both classes"),
        ([[0, 1]], 100, "one-dimensional"),
        ([0, 1] * 50, 99, "draws must be an integer >= 100"),
        ([0] * 99 + [1], 200, "1 positive and 99 negative test rows are too few"),
    ],
)
def test_test_rows_refuse_bad_labels_and_draws(labels, draws, message):
    with pytest.raises(ValueError, match=message):
        TestRows(labels, draws=draws)


def test_row_comparisons_refuse_what_is_not_paired():
    rng = np.random.default_rng(6)
    y = rng.random(200) < 0.3
    rows, other = TestRows(y), TestRows(y, seed=1)
    scores = rng.normal(size=(4, 200))
    with pytest.raises(ValueError, match=r"\(seeds, rows\) with 200 rows"):
        rows.auc(scores[:, :150])
    with pytest.raises(ValueError, match=r"seeds \(rows\) \[2\] are not all finite"):
        rows.auc(np.where(np.arange(4)[:, None] == 2, np.nan, scores))
    a = rows.auc(scores)
    with pytest.raises(ValueError, match="new is a RowAUC but old is list"):
        compare(a, [0.5] * 4, names=("new", "old"))
    with pytest.raises(ValueError, match="scored on different TestRows"):
        compare(a, other.auc(scores))
    with pytest.raises(ValueError, match="A has 4 seeds and B 3"):
        compare(a, rows.auc(scores[:3]))
    with pytest.raises(ValueError, match="the AUCs of at least 2 seeds"):
        mean_interval(rows.auc(scores[0]))


@pytest.mark.parametrize("family", [0, 1.5, True, "9"])
def test_family_must_be_a_count(family):
    with pytest.raises(ValueError, match="family must be the number of comparisons"):
        compare([0.8, 0.9], [0.7, 0.8], family=family)
