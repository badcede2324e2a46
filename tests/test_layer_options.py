"""The layer options every architecture takes (activation, dropout, batch norm, the
embeddings' std) and the bottomless `bottom=()`: their layers, their defaults (the
plain model, weight for weight), their errors, and training with them under `fit` and
`fit_replicas`."""

import functools
import math

import pytest
import torch
from torch import nn

import sbmm
from sbmm.models.mlp import ACTIVATIONS, mlp
from sbmm.train.config import architectures
from sbmm.train.replicas import fit_replicas

FEATURES = [
    sbmm.Dense("x", 3),
    sbmm.Categorical("item", vocab_size=12, dim=4),
    sbmm.MultiCategorical("tags", vocab_size=7, dim=3),
]
D_IN = 3 + 4 + 3
TOWERS = [
    sbmm.Tower("scene1", [sbmm.Objective("click")], hidden=(8,)),
    sbmm.Tower(
        "scene2",
        [
            sbmm.Objective("like", given="click"),
            sbmm.Objective("play_time", "regression", given="click", weight=0.1),
        ],
        hidden=(8,),
        weight=0.5,
    ),
]
# {name: build(**layer options)}: every architecture sbmm.models exports, with its
# default widths
ARCHITECTURES = {
    name: functools.partial(architecture, FEATURES, TOWERS)
    for name, architecture in architectures().items()
}
DEFAULTS = {
    "activation": "relu",
    "dropout": 0.0,
    "batch_norm": False,
    "embedding_std": 1.0,
}
RUN = {"epochs": 2, "batch_size": 32, "lr": 1e-2, "device": "cpu", "progress": False}


def feed(n: int = 96, seed: int = 0) -> sbmm.Batch:
    """A small batch of FEATURES (tags padded with -1) and TOWERS' labels."""
    g = torch.Generator().manual_seed(seed)
    tags = torch.randint(-1, 7, (n, 3), generator=g)
    click = (torch.rand(n, generator=g) < 0.4).float()
    features = {
        "x": torch.randn(n, 3, generator=g),
        "item": torch.randint(0, 12, (n,), generator=g),
        "tags": tags,
    }
    labels = {
        "click": click,
        "like": click * (torch.rand(n, generator=g) < 0.5).float(),
        "play_time": click * torch.rand(n, generator=g) * 3,
    }
    return sbmm.Batch(features, labels)


def kinds(net: nn.Sequential) -> list[type]:
    return [type(layer) for layer in net]


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_the_defaults_build_the_plain_model_weight_for_weight(architecture):
    build = ARCHITECTURES[architecture]
    torch.manual_seed(0)
    default = build().state_dict()
    torch.manual_seed(0)
    explicit = build(**DEFAULTS).state_dict()
    assert list(default) == list(explicit)
    assert all(torch.equal(default[k], explicit[k]) for k in default)
    assert not any("running" in k for k in default)  # no batch norm


def test_the_default_layout_is_linear_relu():
    model = sbmm.SharedBottom(FEATURES, TOWERS, bottom=(16, 8))
    assert kinds(model.bottom) == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU]
    assert kinds(model.towers["scene1"]) == [nn.Linear, nn.ReLU, nn.Linear]
    keys = list(model.state_dict())
    assert {"bottom.0.weight", "bottom.2.weight", "towers.scene2.2.bias"} <= set(keys)
    torch.manual_seed(0)
    plain = mlp(5, (4, 3), 2)
    torch.manual_seed(0)
    again = nn.Sequential(
        nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)
    )
    assert all(
        torch.equal(p, q) for p, q in zip(plain.parameters(), again.parameters())
    )


def test_each_option_adds_its_layer_to_every_hidden_layer_and_none_to_the_last():
    net = mlp(5, (4, 3), 2, activation="gelu", dropout=0.25, batch_norm=True)
    hidden = [nn.Linear, nn.BatchNorm1d, nn.GELU, nn.Dropout]
    assert kinds(net) == hidden + hidden + [nn.Linear]
    assert net[3].p == 0.25 and net[1].num_features == 4 and net[5].num_features == 3
    assert net[0].bias is None and net[4].bias is None and net[8].bias is not None
    assert kinds(mlp(5, (4,), dropout=0.1)) == [nn.Linear, nn.ReLU, nn.Dropout]
    assert kinds(mlp(5, (), 2, batch_norm=True)) == [nn.Linear]
    for name, activation in ACTIVATIONS.items():
        assert type(mlp(5, (4,), activation=name)[1]) is activation
    assert {"relu", "gelu", "silu", "tanh", "leaky_relu", "prelu"} <= set(ACTIVATIONS)


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_every_architecture_applies_the_options_to_bottom_experts_and_towers(
    architecture,
):
    model = ARCHITECTURES[architecture](activation="silu", dropout=0.3, batch_norm=True)
    nets = [m for m in model.modules() if isinstance(m, nn.Sequential)]
    towers = [m for m in model.towers.modules() if isinstance(m, nn.Sequential)]
    assert len(towers) >= 2 and len(nets) > len(towers)  # a bottom or experts as well
    for net in nets:
        n_hidden = len(net) // 4  # Linear, BatchNorm1d, SiLU, Dropout each
        assert n_hidden >= 1
        for i in range(0, 4 * n_hidden, 4):
            linear, norm, activation, dropout = net[i : i + 4]
            assert type(linear) is nn.Linear and type(norm) is nn.BatchNorm1d
            assert norm.num_features == linear.out_features
            assert type(activation) is nn.SiLU and dropout.p == 0.3
        # a tower ends in its plain output Linear; a bottom or an expert does not
        last = [type(layer) for layer in net[4 * n_hidden :]]
        assert last == ([nn.Linear] if any(net is t for t in towers) else [])


def test_embedding_std_draws_every_table_and_keeps_padding_at_zero():
    wide = [
        sbmm.Categorical("user", vocab_size=10_000, dim=16),
        sbmm.MultiCategorical("tags", vocab_size=10_000, dim=16),
    ]
    layer = sbmm.InputLayer(wide, embedding_std=0.01)
    user = layer.embeddings["user"].weight.detach()
    tags = layer.embeddings["tags"].weight.detach()
    assert torch.all(tags[10_000] == 0)  # the padding row
    for table in (user, tags[:10_000]):
        assert float(table.std()) == pytest.approx(0.01, rel=0.05)
        assert abs(float(table.mean())) < 1e-3
    torch.manual_seed(0)
    plain = sbmm.InputLayer(wide[:1])  # 1.0: PyTorch's own draw, not redrawn
    torch.manual_seed(0)
    assert torch.equal(plain.embeddings["user"].weight, nn.Embedding(10_000, 16).weight)


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_every_architecture_draws_its_embeddings_with_the_std(architecture):
    model = ARCHITECTURES[architecture](embedding_std=0.05)
    layers = [m for m in model.modules() if isinstance(m, sbmm.InputLayer)]
    assert len(layers) in (1, len(model.objectives))  # shared, or one per objective
    for layer in layers:
        item = layer.embeddings["item"].weight.detach()
        tags = layer.embeddings["tags"].weight.detach()
        assert torch.all(tags[7] == 0)
        assert float(torch.cat([item.flatten(), tags[:7].flatten()]).abs().max()) < 0.3


@pytest.mark.parametrize("architecture", ["SharedBottom", "SingleTask"])
def test_with_no_bottom_the_towers_read_the_inputs(architecture):
    if architecture == "SharedBottom":
        model = sbmm.SharedBottom(FEATURES, TOWERS, bottom=())
        heads = [model.towers[t.name] for t in TOWERS]
        layers = [model.inputs]
    else:
        model = sbmm.SingleTask(FEATURES, TOWERS, bottom=())
        heads = [model.towers[t.name][o.name] for t in TOWERS for o in t.objectives]
        layers = list(model.inputs.values())
    assert model.parameter_summary()["bottom"] == 0
    assert all(head[0].in_features == D_IN == layers[0].dim for head in heads)
    out = model(feed(8).features)
    assert out["play_time"].shape == (8,)
    sum(y.sum() for y in out.values()).backward()
    for layer in layers:
        for table in layer.embeddings.values():
            assert table.weight.grad is not None and table.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_bad_options_are_refused_naming_them(architecture):
    build = ARCHITECTURES[architecture]
    with pytest.raises(ValueError, match="activation.*'swish'"):
        build(activation="swish")
    with pytest.raises(ValueError, match="activation.*got <class"):
        build(activation=nn.ReLU)
    for p in (1.0, -0.1, math.nan, "0.1", True):
        with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\)"):
            build(dropout=p)
    with pytest.raises(TypeError, match="batch_norm must be True or False"):
        build(batch_norm=1)
    for std in (0, -0.01, math.nan, math.inf, "0.01"):
        with pytest.raises(ValueError, match="embedding_std must be a finite number >"):
            build(embedding_std=std)
    with pytest.raises(TypeError, match="unexpected keyword argument 'drop_out'"):
        build(drop_out=0.1)


def test_experts_and_bottoms_still_need_integer_widths():
    with pytest.raises(ValueError, match="expert widths must be one or more"):
        sbmm.MMoE(FEATURES, TOWERS, expert=())
    with pytest.raises(ValueError, match="expert widths must be one or more"):
        sbmm.PLE(FEATURES, TOWERS, expert=())
    with pytest.raises(ValueError, match="bottom widths must be zero or more"):
        sbmm.SharedBottom(FEATURES, TOWERS, bottom=(8, 0))
    with pytest.raises(ValueError, match="bottom widths must be zero or more"):
        sbmm.SingleTask(FEATURES, TOWERS, bottom=(8.0,))


def test_dropout_is_random_while_training_and_off_in_evaluation():
    features = feed(32).features
    model = ARCHITECTURES["MMoE"](dropout=0.5)
    first, second = model(features)["click"], model(features)["click"]
    assert not torch.equal(first, second)
    model.eval()
    first, second = model(features)["click"], model(features)["click"]
    assert torch.equal(first, second)
    torch.manual_seed(0)
    plain = ARCHITECTURES["MMoE"]()
    torch.manual_seed(0)
    dropped = ARCHITECTURES["MMoE"](dropout=0.5).eval()
    assert torch.equal(plain.eval()(features)["like"], dropped(features)["like"])


@pytest.mark.parametrize(
    "build",
    [
        lambda **o: sbmm.SharedBottom(FEATURES, TOWERS, (16, 8), **o),
        lambda **o: sbmm.PLE(FEATURES, TOWERS, expert=(8, 4), levels=2, **o),
    ],
    ids=["SharedBottom", "PLE-2"],
)
def test_fit_trains_dropout_and_batch_norm_and_predicts_deterministically(build):
    train, valid = feed(96, seed=0), feed(40, seed=1)
    torch.manual_seed(0)
    model = build(dropout=0.2, batch_norm=True, activation="gelu")
    history = sbmm.fit(model, train, valid, seed=0, **RUN)
    assert history.epochs == 2
    for values in (*history.train_loss.values(), *history.valid_loss.values()):
        assert all(math.isfinite(v) for v in values)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    assert norms and all(int(m.num_batches_tracked) == 2 * 3 for m in norms)
    assert all(float(m.running_mean.abs().sum()) > 0 for m in norms)
    first, second = sbmm.predict(model, valid), sbmm.predict(model, valid)
    assert not model.training
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_replicas_with_batch_norm_train_as_separate_fits():
    train, valid = feed(96, seed=0), feed(40, seed=1)
    options = {"batch_norm": True, "activation": "prelu"}

    def build():
        return ARCHITECTURES["MMoE"](**options)

    replicas = fit_replicas(build, train, valid, seeds=(3, 4), **RUN)
    for seed, model, history in replicas:
        sbmm.seed_everything(seed)
        expected = build()
        expected_history = sbmm.fit(expected, train, valid, seed=seed, **RUN)
        for name, losses in history.train_loss.items():
            assert losses == pytest.approx(expected_history.train_loss[name], rel=1e-5)
        state, other = model.state_dict(), expected.state_dict()
        assert any("running_var" in k for k in state)
        for k in state:
            torch.testing.assert_close(state[k], other[k], rtol=1e-4, atol=2e-5, msg=k)
        prediction, again = sbmm.predict(model, valid), sbmm.predict(expected, valid)
        torch.testing.assert_close(prediction, again, rtol=1e-4, atol=1e-5)


def test_replicas_draw_their_own_dropout_masks():
    """Replicas built alike and fed the whole set per step stay alike without dropout
    (their batches differ only in row order) and part with it: each draws its own
    masks. A run is reproducible."""
    train = feed(64)
    run = {**RUN, "batch_size": 64}

    def alike(**options):
        def build():
            torch.manual_seed(0)
            return ARCHITECTURES["SharedBottom"](**options)

        return build

    plain = fit_replicas(alike(), train, seeds=(0, 1), **run)
    a, b = (m.state_dict()["bottom.0.weight"] for m in plain.models)
    torch.testing.assert_close(a, b)
    dropped = fit_replicas(alike(dropout=0.3), train, seeds=(0, 1), **run)
    a, b = (m.state_dict()["bottom.0.weight"] for m in dropped.models)
    assert (a - b).abs().max() > 1e-4
    again = fit_replicas(alike(dropout=0.3), train, seeds=(0, 1), **run)
    for model, other in zip(dropped.models, again.models):
        assert all(
            torch.equal(p, q) for p, q in zip(model.parameters(), other.parameters())
        )
    for history in dropped.histories:
        assert all(math.isfinite(v) for v in history.train_loss["total"])


def test_replicas_refuse_builds_that_differ_in_their_layers():
    options = iter([{}, {"dropout": 0.1}])
    with pytest.raises(ValueError, match="after seed 1 returned a model unlike"):
        fit_replicas(
            lambda: ARCHITECTURES["SharedBottom"](**next(options)),
            feed(32),
            seeds=(0, 1),
            **RUN,
        )
