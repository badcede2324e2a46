"""correlated_tasks: the MMoE paper's two regression tasks of controlled correlation."""

import math

import pytest
import torch

from sbmm.data import (
    CORRELATED_TASKS_TRUTH_SPECS,
    Batch,
    correlated_tasks,
    label_correlation,
)


def test_shapes_dtypes_and_names():
    batch = correlated_tasks(300, 0.5, d=7)
    assert isinstance(batch, Batch) and len(batch) == 300
    assert set(batch.features) == {"x"} and set(batch.labels) == {"y1", "y2"}
    assert set(batch.truth) == {"y1", "y2", "attainable_y1", "attainable_y2"}
    assert (
        batch.features["x"].shape == (300, 7)
        and batch.features["x"].dtype == torch.float32
    )
    for table in (batch.labels, batch.truth):
        assert all(
            v.shape == (300,) and v.dtype == torch.float32 for v in table.values()
        )


def test_same_seed_same_data_other_seed_other_data():
    a, b, other = (correlated_tasks(500, 0.3, seed=s) for s in (4, 4, 5))
    for part in ("features", "labels", "truth"):
        for name, value in getattr(a, part).items():
            assert torch.equal(value, getattr(b, part)[name]), name
            assert not torch.equal(value, getattr(other, part)[name]), name


def test_the_truth_is_attainable_and_the_specs_say_so():
    batch = correlated_tasks(500, 0.3, seed=0)
    assert list(CORRELATED_TASKS_TRUTH_SPECS) == ["y1", "y2"]
    for label, spec in CORRELATED_TASKS_TRUTH_SPECS.items():
        assert (spec.label, spec.truth, spec.parent) == (label, label, None)
        assert spec.kind == "regression"
        assert torch.equal(batch.truth[spec.attainable], batch.truth[spec.truth])
        assert spec.rows(batch).all()


def test_a_sweep_over_p_changes_only_the_second_task():
    low, high = correlated_tasks(500, -0.2, seed=0), correlated_tasks(500, 0.9, seed=0)
    assert torch.equal(low.features["x"], high.features["x"])
    assert torch.equal(low.truth["y1"], high.truth["y1"]), (
        "w1 = c·u1 does not depend on p"
    )
    assert not torch.equal(low.truth["y2"], high.truth["y2"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_label_correlation_rises_with_p(seed):
    n = 20_000
    r = [
        label_correlation(correlated_tasks(n, p, seed=seed))
        for p in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    assert all(a < b for a, b in zip(r, r[1:])), r
    assert abs(r[0]) < 4 / math.sqrt(n), (
        "p = 0: the tasks read independent projections of x"
    )
    assert r[-1] > 0.95


@pytest.mark.parametrize("noise", [0.1, 0.5])
def test_p_one_makes_the_tasks_differ_only_by_noise(noise):
    batch = correlated_tasks(20_000, 1.0, noise=noise, seed=3)
    assert torch.equal(batch.truth["y1"], batch.truth["y2"])
    assert label_correlation(batch, noise_free=True) == pytest.approx(1.0)
    spread = float((batch.labels["y1"] - batch.labels["y2"]).std())
    assert spread == pytest.approx(noise * math.sqrt(2), rel=0.03)


def test_labels_are_truth_plus_noise_of_the_given_std():
    quiet = correlated_tasks(20_000, 0.4, noise=0.0, seed=1)
    assert torch.equal(quiet.labels["y1"], quiet.truth["y1"])
    noisy = correlated_tasks(20_000, 0.4, noise=0.2, seed=1)
    residual = noisy.labels["y2"] - noisy.truth["y2"]
    assert float(residual.mean()) == pytest.approx(0.0, abs=4 * 0.2 / math.sqrt(20_000))
    assert float(residual.std()) == pytest.approx(0.2, rel=0.03)


@pytest.mark.parametrize("p", [0.3, -0.6])
def test_task_weight_vectors_have_cosine_p(p):
    # With c small, f_k ≈ const + (1 + Σ α_i cos β_i)·w_kᵀx: both tasks share the factor
    # (same α, β), so the least-squares slopes of f1 and f2 on x point along w1 and w2.
    batch = correlated_tasks(2_000, p, c=1e-3, noise=0.0, seed=0)
    x = torch.cat(
        [batch.features["x"].double(), torch.ones(2_000, 1, dtype=torch.float64)], dim=1
    )
    f = torch.stack([batch.truth["y1"], batch.truth["y2"]], dim=1).double()
    slopes = torch.linalg.lstsq(x, f).solution[:-1]  # (d, 2)
    assert float(
        torch.cosine_similarity(slopes[:, 0], slopes[:, 1], dim=0)
    ) == pytest.approx(p, abs=0.01)
    assert float(slopes[:, 0].norm()) == pytest.approx(
        float(slopes[:, 1].norm()), rel=0.01
    )


@pytest.mark.parametrize("p", [1.01, -1.5, float("nan")])
def test_p_outside_the_unit_interval_raises(p):
    with pytest.raises(ValueError, match="p must be in"):
        correlated_tasks(10, p)


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"n": 0}, "n must"),
        ({"d": 1}, "d must"),
        ({"m": 0}, "m must"),
        ({"c": 0.0}, "c must"),
        ({"noise": -0.1}, "noise must"),
    ],
)
def test_bad_arguments_raise_naming_them(kwargs, named):
    args = {"n": 10, "p": 0.5, **kwargs}
    with pytest.raises(ValueError, match=named):
        correlated_tasks(**args)
