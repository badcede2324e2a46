"""Anchors: constant, model, attainable and noisy truth, and the share of the gap."""

import math

import pytest
import torch
from sklearn.metrics import log_loss

from sbmm.anchors import (
    Anchor,
    AnchorTable,
    anchor_table,
    gap_closed,
    gap_closed_by_run,
)
from sbmm.data import (
    CORRELATED_TASKS_TRUTH_SPECS,
    Batch,
    FeedSimulator,
    correlated_tasks,
)


@pytest.fixture(scope="module")
def data():
    return FeedSimulator().simulate(20_000, seed=0)


def as_prediction(batch: Batch, specs, column: str) -> dict[str, torch.Tensor]:
    """Each label's truth column `column` ("truth" or "attainable") as a model predicts:
    logits (binary) or values (regression), (N,) each."""
    out = {}
    for label, spec in specs.items():
        value = batch.truth[getattr(spec, column)].double()
        out[label] = torch.logit(value) if spec.kind == "binary" else value
    return out


def constant_prediction(batch: Batch, specs) -> dict[str, torch.Tensor]:
    """Each label's mean over its scored rows, as a logit or a value, on every row."""
    out = {}
    for label, spec in specs.items():
        mean = batch.labels[label][spec.rows(batch)].double().mean()
        out[label] = torch.full(
            (len(batch),), float(torch.logit(mean) if spec.kind == "binary" else mean)
        )
    return out


def test_the_constant_closes_none_of_the_gap(data):
    table = anchor_table(
        constant_prediction(data.batch, data.truth_specs), data.batch, data.truth_specs
    )
    assert [(r.objective, r.metric) for r in table] == [
        ("stay", "auc"),
        ("stay", "logloss"),
        ("stay_time", "rmse"),
        ("click", "auc"),
        ("click", "logloss"),
        ("play_time", "rmse"),
        ("like", "auc"),
        ("like", "logloss"),
    ]
    for row in table:
        if row.metric == "auc":
            assert row.constant == row.model == 0.5 and row.share == 0
            assert 0.5 < row.attainable < row.truth, row
        else:
            assert row.model == pytest.approx(row.constant, rel=1e-12)
            assert row.share == pytest.approx(0, abs=1e-9)
            assert row.truth < row.attainable < row.constant, (
                row
            )  # losses: lower is better


def test_scoring_the_attainable_truth_closes_all_of_the_gap(data):
    table = anchor_table(
        as_prediction(data.batch, data.truth_specs, "attainable"),
        data.batch,
        data.truth_specs,
    )
    for row in table:
        assert row.model == pytest.approx(row.attainable, rel=1e-12)
        assert row.share == pytest.approx(1, abs=1e-9), row
    noisy = anchor_table(
        as_prediction(data.batch, data.truth_specs, "truth"),
        data.batch,
        data.truth_specs,
    )
    assert all(row.share > 1 for row in noisy), (
        "the noisy truth beats the ceiling: it knows ε"
    )


def test_a_label_with_a_parent_is_scored_on_its_parent_rows_only(data):
    batch, spec = data.batch, data.truth_specs["like"]
    clicked = batch.labels["click"] > 0
    # The attainable truth where there was a click; anti-ranked extremes elsewhere.
    logit = torch.logit(batch.truth["attainable_p_like_given_click"].double())
    prediction = torch.where(clicked, logit, -50 * logit)
    table = anchor_table({"like": prediction}, batch, data.truth_specs)
    for metric in ("auc", "logloss"):
        assert table["like", metric].n == int(clicked.sum())
        assert table["like", metric].share == pytest.approx(1, abs=1e-9)
        assert (
            gap_closed(prediction, batch, spec, metric) == table["like", metric].share
        )
    likes = batch.labels["like"][clicked].double().numpy()
    base_rate = torch.full((len(likes),), float(likes.mean())).numpy()
    assert table["like", "logloss"].constant == pytest.approx(
        log_loss(likes, base_rate)
    )


def test_gap_closed_defaults_to_auc_and_rmse(data):
    prediction = as_prediction(data.batch, data.truth_specs, "attainable")
    specs = data.truth_specs
    assert gap_closed(prediction["click"], data.batch, specs["click"]) == pytest.approx(
        1
    )
    assert gap_closed(0.5 * prediction["play_time"], data.batch, specs["play_time"]) < 1
    with pytest.raises(ValueError, match="'rmse' does not score a binary label"):
        gap_closed(prediction["click"], data.batch, specs["click"], "rmse")


def test_gap_closed_by_run_has_a_row_per_run_and_a_column_per_objective(data):
    specs = {o: data.truth_specs[o] for o in ("click", "like", "play_time")}
    attainable = as_prediction(data.batch, specs, "attainable")
    constant = constant_prediction(data.batch, specs)
    shares = gap_closed_by_run([attainable, constant], data.batch, specs)
    assert shares.shape == (2, 3)
    for j, (label, spec) in enumerate(specs.items()):
        for i, run in enumerate((attainable, constant)):
            assert shares[i, j] == gap_closed(run[label], data.batch, spec)
    assert shares[0] == pytest.approx(1) and shares[1] == pytest.approx(0, abs=1e-9)
    with pytest.raises(
        ValueError, match="run 1 has no prediction for objective 'like'"
    ):
        gap_closed_by_run([attainable, {"click": constant["click"]}], data.batch, specs)


def test_regression_anchors_of_correlated_tasks():
    batch = correlated_tasks(5_000, 0.5, noise=0.5, seed=0)
    specs = CORRELATED_TASKS_TRUTH_SPECS
    table = anchor_table(as_prediction(batch, specs, "truth"), batch, specs)
    for label in ("y1", "y2"):
        row = table[label, "rmse"]
        assert row.attainable == row.truth == row.model and row.share == 1
        assert row.model == pytest.approx(0.5, rel=0.05), (
            "the RMSE of the truth is the noise"
        )
        assert row.constant == pytest.approx(float(batch.labels[label].std()), rel=1e-3)


def test_the_table_prints_and_finds_rows():
    row = Anchor("like", "auc", 1_234, 0.5, 0.6, 0.7, 0.75)
    table = AnchorTable((row,))
    assert table["like", "auc"] is row and len(table) == 1 and list(table) == [row]
    text = str(table).splitlines()
    assert text[0].split() == [
        "objective",
        "metric",
        "n",
        "constant",
        "model",
        "attainable",
        "truth",
        "gap",
        "closed",
    ]
    assert set(text[1]) == {"-", " "}
    assert text[2].split() == [
        "like",
        "auc",
        "1,234",
        "0.5000",
        "0.6000",
        "0.7000",
        "0.7500",
        "50.0%",
    ]
    assert table._repr_html_().startswith("<table>") and "50.0%" in table._repr_html_()
    with pytest.raises(KeyError):
        table["like", "rmse"]
    assert math.isnan(Anchor("x", "auc", 10, 0.5, 0.6, 0.5, 0.6).share), (
        "no gap to close"
    )


def test_bad_input_raises_naming_it(data):
    batch, specs = data.batch, data.truth_specs
    good = torch.zeros(len(batch))
    with pytest.raises(ValueError, match="unknown objective 'clik'"):
        anchor_table({"clik": good}, batch, specs)
    no_ceiling = Batch(
        batch.features,
        batch.labels,
        {k: v for k, v in batch.truth.items() if k != "attainable_p_stay"},
    )
    with pytest.raises(ValueError, match="'stay'.*truth column 'attainable_p_stay'"):
        anchor_table({"stay": good}, no_ceiling, specs)
    no_parent = Batch(
        batch.features,
        {k: v for k, v in batch.labels.items() if k != "click"},
        batch.truth,
    )
    with pytest.raises(ValueError, match="'like'.*label column 'click'"):
        anchor_table({"like": good}, no_parent, specs)
    with pytest.raises(ValueError, match=r"'click'.*shape \(19999,\)"):
        anchor_table({"click": good[1:]}, batch, specs)
    with pytest.raises(ValueError, match=r"'click'.*shape \(20000, 2\)"):
        anchor_table({"click": torch.zeros(len(batch), 2)}, batch, specs)
    with pytest.raises(ValueError, match="'stay'.*NaN"):
        anchor_table({"stay": torch.full((len(batch),), math.nan)}, batch, specs)
    with pytest.raises(TypeError, match="TruthSpec"):
        anchor_table({"stay": good}, batch, {"stay": "p_stay"})
