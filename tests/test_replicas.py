"""`fit_replicas`: K seeds in one vectorised pass train as K separate `fit`s do."""

import math

import pytest
import torch
from torch import nn

import sbmm
from sbmm.data import FeedSimulator, feed_features
from sbmm.train import replicas as replicas_module
from sbmm.train.replicas import fit_replicas
from sbmm.weighting import DWA, GradNorm, PCGrad, Uncertainty

SEEDS = (0, 1, 2)
RUN = {"epochs": 2, "batch_size": 64, "lr": 1e-2, "device": "cpu", "progress": False}
# A masked objective (like), a masked conditional one (stay_time given stay), a sample
# weight (click's, by play time), an entire-space objective (play_time given click).
TOWERS = [
    sbmm.Tower(
        "scene1",
        [
            sbmm.Objective("stay"),
            sbmm.Objective("stay_time", "regression", given="stay", weight=0.01),
            sbmm.Objective(
                "click",
                sample_weight=sbmm.SampleWeight(
                    "play_time",
                    on="positives",
                    transform="log1p",
                    normalise="batch_mean",
                ),
            ),
        ],
        hidden=(8,),
    ),
    sbmm.Tower(
        "scene2",
        [
            sbmm.Objective(
                "play_time", "regression", given="click", space="entire", weight=0.01
            ),
            sbmm.Objective("like", given="click"),
        ],
        hidden=(8,),
        weight=0.5,
    ),
]
SIMULATOR = FeedSimulator(n_users=200, n_items=100, n_authors=20, latent_dim=8)
FEATURES = feed_features(SIMULATOR.config, id_dim=4, content_dim=4, attribute_dim=2)
ARCHITECTURES = {
    "SharedBottom": lambda: sbmm.SharedBottom(FEATURES, TOWERS, bottom=(16, 8)),
    "MMoE": lambda: sbmm.MMoE(FEATURES, TOWERS, n_experts=3, expert=(8,)),
    "PLE": lambda: sbmm.PLE(FEATURES, TOWERS, expert=(8,), levels=2),
}


@pytest.fixture(scope="module")
def feed():
    """(train, valid): a small simulated feed log, tags (multi-valued) included."""
    data = SIMULATOR.simulate(500, seed=0)
    return data.train, data.valid


def separate(build, train, valid, seed, **options):
    """The run a replica must equal: build after seeding, then `fit` with the seed."""
    sbmm.seed_everything(seed)
    model = build()
    return model, sbmm.fit(model, train, valid, seed=seed, **{**RUN, **options})


def close(a, b) -> bool:
    """Floats (nested in dicts and lists) equal to float rounding; NaN equals NaN."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == pytest.approx(b, rel=1e-5, abs=1e-6)


def assert_same_run(replica, history, model, expected):
    """A replica's weights and History are the separate run's (`model`, `expected`):
    weights to 2e-5 (they move by ~1e-1 in training and differ by ~1e-1 across
    seeds)."""
    pairs = zip(replica.named_parameters(), model.named_parameters())
    for (name, p), (other, q) in pairs:
        assert name == other
        torch.testing.assert_close(p, q, rtol=1e-4, atol=2e-5, msg=name)
    for field in ("train_loss", "valid_loss", "valid_metrics", "weights"):
        assert close(getattr(history, field), getattr(expected, field)), field
    assert history.epochs == expected.epochs
    assert history.best_epoch == expected.best_epoch


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_each_replica_trains_as_a_separate_fit_with_its_seed(feed, architecture):
    train, valid = feed
    build = ARCHITECTURES[architecture]
    replicas = fit_replicas(build, train, valid, seeds=SEEDS, **RUN)
    assert len(replicas) == 3 and replicas.seeds == SEEDS
    for seed, model, history in replicas:
        assert isinstance(model, sbmm.MultiTaskModel)
        expected_model, expected = separate(build, train, valid, seed)
        assert_same_run(model, history, expected_model, expected)
        assert close(sbmm.evaluate(model, valid), sbmm.evaluate(expected_model, valid))
    first, second = (dict(m.named_parameters()) for m in replicas.models[:2])
    assert not torch.allclose(
        first["towers.scene2.0.weight"], second["towers.scene2.0.weight"]
    )


def test_keep_best_keeps_each_replicas_own_best_epoch(feed):
    train, valid = feed
    build = ARCHITECTURES["SharedBottom"]
    options = {"epochs": 6, "lr": 2e-2, "keep_best": True}  # a high rate: it overfits
    replicas = fit_replicas(build, train, valid, seeds=SEEDS, **{**RUN, **options})
    for seed, model, history in replicas:
        expected_model, expected = separate(build, train, valid, seed, **options)
        assert_same_run(model, history, expected_model, expected)
    best = [h.best_epoch for h in replicas.histories]
    assert max(best) < 6 and len(set(best)) > 1, best  # early, and not the same for all
    lowest = [h.valid_loss["total"][h.best_epoch - 1] for h in replicas.histories]
    assert replicas.best_valid_loss().tolist() == lowest


def test_early_stopping_stops_each_replica_where_its_fit_run_stops(feed, monkeypatch):
    train, valid = feed
    build = ARCHITECTURES["SharedBottom"]
    rule = sbmm.EarlyStopping(patience=1, objective="click", metric="auc")
    options = {"epochs": 8, "lr": 3e-2, "early_stopping": rule, "weight_decay": 0.01}
    stacked = []  # how many replicas each epoch trains
    train_epoch = replicas_module._train_epoch

    def counting(losses_of, params, *args):
        stacked.append(next(iter(params.values())).shape[0])
        return train_epoch(losses_of, params, *args)

    monkeypatch.setattr(replicas_module, "_train_epoch", counting)
    replicas = fit_replicas(build, train, valid, seeds=SEEDS, **{**RUN, **options})
    lengths = [history.epochs for history in replicas.histories]
    assert max(lengths) < 8 and len(set(lengths)) > 1  # the replicas stop apart
    # A stopped replica leaves the stack: epoch e trains the replicas still running,
    # and one stopped one beside a last one running.
    running = [sum(n > e for n in lengths) for e in range(max(lengths))]
    assert stacked == [max(r, 2) for r in running] and min(running) == 1
    for seed, model, history in replicas:
        expected_model, expected = separate(build, train, valid, seed, **options)
        assert_same_run(model, history, expected_model, expected)


def test_a_replica_trains_to_the_bit_alike_in_any_stack_of_two_or_more(feed):
    train, valid = feed
    build = ARCHITECTURES["MMoE"]
    rule = sbmm.EarlyStopping(patience=1, objective="click", metric="auc")
    options = {**RUN, "epochs": 6, "lr": 3e-2, "early_stopping": rule}
    pair = fit_replicas(build, train, valid, seeds=SEEDS[:2], **options)
    trio = fit_replicas(build, train, valid, seeds=SEEDS[:3], **options)
    for a, b in zip(pair.models, trio.models):  # stacks that shrink at other epochs
        for (name, p), q in zip(a.named_parameters(), b.parameters()):
            assert torch.equal(p, q), name
    assert pair.histories[0].valid_loss == trio.histories[0].valid_loss


def test_replicas_score_each_seed_against_the_truth(feed):
    data = SIMULATOR.simulate(2_000, seed=1)
    specs = {o: data.truth_specs[o] for o in ("click", "like")}
    build = ARCHITECTURES["SharedBottom"]
    replicas = fit_replicas(build, data.train, seeds=SEEDS, **RUN)
    shares = replicas.gap_closed(data.test, specs)
    assert shares.shape == (len(SEEDS), 2)
    for k, model in enumerate(replicas.models):
        prediction = sbmm.predict(model, data.test)
        for j, (label, spec) in enumerate(specs.items()):
            assert shares[k, j] == sbmm.gap_closed(prediction[label], data.test, spec)
    with pytest.raises(ValueError, match="needs a run with validation data"):
        replicas.best_valid_loss()


def test_dwa_weights_each_replica_by_its_own_losses(feed):
    train, valid = feed
    build = ARCHITECTURES["SharedBottom"]
    options = {"epochs": 3, "weighting": DWA()}  # DWA's weights move from epoch 3
    replicas = fit_replicas(build, train, valid, seeds=SEEDS, **{**RUN, **options})
    for seed, model, history in replicas:
        options["weighting"] = DWA()
        expected_model, expected = separate(build, train, valid, seed, **options)
        assert_same_run(model, history, expected_model, expected)
    last = [h.weights["like"][-1] for h in replicas.histories]
    assert len(set(last)) == 3 and all(w != 0.5 for w in last)  # moved, per replica


def test_sum_pooled_multi_valued_features_and_empty_bags():
    g = torch.Generator().manual_seed(0)
    n = 96
    tags = torch.randint(-1, 6, (n, 3), generator=g)
    tags[:8] = -1  # empty bags
    features = {
        "tags": tags,
        "item": torch.randint(0, 5, (n,), generator=g),
        "x": torch.randn(n, 2, generator=g),
    }
    click = (torch.rand(n, generator=g) < 0.5).float()
    data = sbmm.Batch(features, {"click": click})
    declared = [
        sbmm.MultiCategorical("tags", vocab_size=6, dim=3, pooling="sum"),
        sbmm.Categorical("item", vocab_size=5, dim=2),
        sbmm.Dense("x", 2),
    ]
    towers = [sbmm.Tower("t", [sbmm.Objective("click")], hidden=(4,))]

    def build():
        return sbmm.SharedBottom(declared, towers, bottom=(4,))

    replicas = fit_replicas(build, data, seeds=(5, 7), **{**RUN, "batch_size": 20})
    for seed, model, history in replicas:
        assert_same_run(
            model, history, *separate(build, data, None, seed, batch_size=20)
        )


@pytest.mark.parametrize("strategy", [Uncertainty, GradNorm, PCGrad])
def test_strategies_that_take_gradients_or_learn_are_refused(feed, strategy):
    train, _ = feed
    build = ARCHITECTURES["SharedBottom"]
    with pytest.raises(ValueError, match=f"cannot batch the {strategy.__name__} "):
        fit_replicas(build, train, seeds=SEEDS, weighting=strategy(), **RUN)


def test_a_strategy_is_batched_only_when_it_says_so(feed):
    """A new strategy whose `weights()` are floats is refused until it declares
    `batchable`; then every replica trains under its weights."""
    train, _ = feed

    class Halved(sbmm.weighting.Weighting):
        def weights(self):
            return {name: 0.5 * w for name, w in self.declared.items()}

    build = ARCHITECTURES["SharedBottom"]
    with pytest.raises(ValueError, match="cannot batch the Halved .*batchable"):
        fit_replicas(build, train, seeds=SEEDS[:2], weighting=Halved(), **RUN)
    Halved.batchable = True
    replicas = fit_replicas(build, train, seeds=SEEDS[:2], weighting=Halved(), **RUN)
    declared = sbmm.losses.declared_weights(TOWERS)
    for _, _, history in replicas:
        assert {k: v[-1] for k, v in history.weights.items()} == pytest.approx(
            {k: 0.5 * w for k, w in declared.items()}
        )


def test_bad_input_is_refused_before_training(feed):
    train, valid = feed
    build = ARCHITECTURES["SharedBottom"]
    for seeds, error, match in [
        ((), ValueError, "empty"),
        ((0, 1, 0), ValueError, r"distinct; repeated: \[0\]"),
        (3, TypeError, "sequence"),
        ((0, 1.5), TypeError, "ints"),
    ]:
        with pytest.raises(error, match=match):
            fit_replicas(build, train, seeds=seeds, **RUN)
    with pytest.raises(TypeError, match="sbmm model"):
        fit_replicas(lambda: nn.Linear(2, 1), train, seeds=SEEDS, **RUN)
    the_model = build()
    with pytest.raises(ValueError, match="same model"):
        fit_replicas(lambda: the_model, train, seeds=SEEDS, **RUN)
    widths = iter([(16, 8), (16, 8), (16, 4)])
    with pytest.raises(ValueError, match="after seed 2 returned a model unlike"):
        fit_replicas(
            lambda: sbmm.SharedBottom(FEATURES, TOWERS, next(widths)),
            train,
            seeds=SEEDS,
            **RUN,
        )
    with pytest.raises(ValueError, match="epochs"):
        fit_replicas(build, train, seeds=SEEDS, **{**RUN, "epochs": 0})
    with pytest.raises(ValueError, match="keep_best.*valid"):
        fit_replicas(build, train, seeds=SEEDS, keep_best=True, **RUN)
    built = []

    def recording_build():
        built.append(build())
        return built[-1]

    ids = valid.features["item_id"] + 1000  # outside the vocabulary
    bad = sbmm.Batch({**valid.features, "item_id": ids}, valid.labels)
    with pytest.raises(ValueError, match="valid.*'item_id'"):
        fit_replicas(recording_build, train, bad, seeds=SEEDS, **RUN)
    assert len(built) == 3
    for seed, model in zip(SEEDS, built):  # untouched: the data were checked first
        sbmm.seed_everything(seed)
        assert all(
            torch.equal(p, q) for p, q in zip(model.parameters(), build().parameters())
        )


def test_divergence_raises_naming_the_seed(feed):
    train, _ = feed
    labels = {**train.labels, "stay_time": train.labels["stay_time"] * 1e30}
    with pytest.raises(FloatingPointError, match="seed 0, epoch 1: the loss of"):
        fit_replicas(
            ARCHITECTURES["SharedBottom"],
            sbmm.Batch(train.features, labels),
            seeds=SEEDS,
            **{**RUN, "lr": 1.0},
        )


def test_an_optimizer_function_trains_each_replica_as_fit_does_with_it(feed):
    """Adam with L2 weight decay (torch-rechub's form) is elementwise: one over the
    stacked parameters is one per replica."""
    train, valid = feed
    build = ARCHITECTURES["SharedBottom"]

    def adam_l2(params):
        return torch.optim.Adam(params, lr=RUN["lr"], weight_decay=1e-4)

    options = {"optimizer": adam_l2, "keep_best": True}
    replicas = fit_replicas(build, train, valid, seeds=SEEDS, **{**RUN, **options})
    for seed, model, history in replicas:
        expected_model, expected = separate(build, train, valid, seed, **options)
        assert_same_run(model, history, expected_model, expected)
    plain_model, _ = separate(build, train, valid, SEEDS[0], keep_best=True)
    moved = [
        not torch.equal(p, q)
        for p, q in zip(replicas.models[0].parameters(), plain_model.parameters())
    ]
    assert any(moved)  # the L2 term changed the run
    with pytest.raises(TypeError, match="must return a torch.optim.Optimizer"):
        fit_replicas(build, train, seeds=SEEDS, optimizer=lambda p: None, **RUN)


def test_batch_norm_with_a_last_batch_of_one_row_is_refused_before_building_on(feed):
    train, _ = feed
    rows = len(train)
    batch_size = next(b for b in range(60, rows) if rows % b == 1)

    def build():
        return sbmm.SharedBottom(FEATURES, TOWERS, bottom=(8,), batch_norm=True)

    message = f"batch_size={batch_size} over {rows} training rows .* e.g. "
    with pytest.raises(ValueError, match=message):
        fit_replicas(build, train, seeds=SEEDS, **{**RUN, "batch_size": batch_size})


def test_one_warning_names_the_unconverged_seeds_and_converged_is_a_table(feed):
    train, valid = feed
    build = ARCHITECTURES["SharedBottom"]
    with pytest.warns(sbmm.train.NotConverged) as caught:
        replicas = fit_replicas(build, train, valid, seeds=SEEDS, **RUN)
    assert len(caught) == 1
    table = replicas.converged()
    assert list(table) == list(SEEDS)
    names = {"total", "stay", "stay_time", "click", "play_time", "like"}
    assert all(set(row) == names for row in table.values())
    message = str(caught[0].message)
    for seed, history in zip(SEEDS, replicas.histories):
        last = [k for k, e in history.best_epochs.items() if e == history.epochs]
        assert all(not table[seed][k] for k in last)  # best at the last: unconverged
    for name in names:
        seeds = [
            s
            for s, h in zip(SEEDS, replicas.histories)
            if h.best_epochs[name] == h.epochs
        ]
        assert (f"{name!r} at " in message) == bool(seeds)
        if seeds and len(seeds) < len(SEEDS):
            assert ", ".join(map(str, seeds)) + f" of {len(SEEDS)}" in message
