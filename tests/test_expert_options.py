"""The fixes industry makes to gated models' experts, as options of MMoE, OMoE and PLE:
HoME's normalised experts with Swish and its feature gate, and STEM's task-specific
embeddings. Each is off by default (the plain model, weight for weight), builds what it
says, trains as it says (a task's embeddings get no gradient from another task), and
trains under `fit_replicas` as separate fits do."""

import pytest
import torch
from expert_world import FEATURES, batch, towers
from torch import nn

import sbmm
from sbmm.models.experts import ExpertOptions, Experts, FeatureGate
from sbmm.models.mlp import LayerOptions

D_IN = 5 + 3  # the inputs' width: x, and item's embedding


pytestmark = pytest.mark.filterwarnings("ignore::sbmm.NotConverged")

GATED = {
    "MMoE": lambda **o: sbmm.MMoE(FEATURES, towers(), n_experts=3, expert=(8, 4), **o),
    "OMoE": lambda **o: sbmm.OMoE(FEATURES, towers(), n_experts=3, expert=(8,), **o),
    "PLE": lambda **o: sbmm.PLE(FEATURES, towers(), expert=(8,), levels=2, **o),
}
OFF = dict(expert_norm=False, expert_activation=None, feature_gate=0)


def built(name, seed=0, **options):
    torch.manual_seed(seed)
    return GATED[name](**options)


@pytest.mark.parametrize("name", GATED)
def test_every_fix_switched_off_is_the_plain_model(name):
    off = OFF | ({"task_embeddings": False} if name != "PLE" else {})
    plain, explicit = built(name), built(name, **off)
    same_activation = built(name, expert_activation="relu")
    x = batch().features
    for other in (explicit, same_activation):
        a, b = plain.state_dict(), other.state_dict()
        assert list(a) == list(b)
        assert all(torch.equal(a[k], b[k]) for k in a)
        out_a, out_b = plain(x), other(x)
        assert all(torch.equal(out_a[k], out_b[k]) for k in out_a)
    assert not any(
        isinstance(m, (nn.BatchNorm1d, FeatureGate)) for m in plain.modules()
    )


@pytest.mark.parametrize("name", GATED)
def test_expert_norm_and_swish_change_the_experts_only(name):
    model = built(name, expert_norm=True, expert_activation="silu")
    experts = [m for m in model.modules() if isinstance(m, Experts)]
    assert experts
    for net in (n for e in experts for n in e.nets):
        kinds = [type(layer) for layer in net]
        # every layer: Linear (no bias: the norm's shift replaces it) → BN → Swish
        assert kinds == [nn.Linear, nn.BatchNorm1d, nn.SiLU] * (len(kinds) // 3)
        assert all(layer.bias is None for layer in net if isinstance(layer, nn.Linear))
    for tower in model.towers.values():
        assert not any(isinstance(m, (nn.BatchNorm1d, nn.SiLU)) for m in tower)
        assert any(isinstance(m, nn.ReLU) for m in tower)
    out = model.train()(batch().features)
    assert out["click"].shape == out["like"].shape == (32,)


def test_normalised_experts_give_outputs_of_one_scale_whatever_their_weights():
    torch.manual_seed(0)
    experts = Experts(D_IN, (6,), 3, LayerOptions(), ExpertOptions(norm=True))
    with torch.no_grad():  # one expert's weights 100 times the others'
        experts.nets[0][0].weight.mul_(100)
    x = torch.randn(256, D_IN)
    pre = [net[1](net[0](x)) for net in experts.nets]  # after BN, before ReLU
    for h in pre:
        assert h.mean(0).abs().max() < 1e-4
        assert torch.allclose(h.std(0, unbiased=False), torch.ones(6), atol=1e-3)
    sizes = experts.train()(x).norm(dim=2).mean(0)  # (3,)
    assert sizes.max() / sizes.min() < 1.5


def test_the_feature_gate_gives_each_expert_its_own_view_of_the_input():
    torch.manual_seed(0)
    gate = FeatureGate(D_IN, 3, rank=2)
    x = torch.randn(10, D_IN)
    assert torch.equal(gate(x), x.unsqueeze(1).expand(10, 3, D_IN))  # 2σ(0) = 1
    with torch.no_grad():
        gate.up.normal_()
    views = gate(x)  # (B, n, d)
    assert views.shape == (10, 3, D_IN)
    assert not torch.allclose(views[:, 0], views[:, 1])
    scale = views / x.unsqueeze(1)
    assert bool(((scale > 0) & (scale < 2)).all())  # 2σ(·) lies in (0, 2)


@pytest.mark.parametrize("name", ["MMoE", "PLE"])
def test_a_feature_gated_model_starts_as_the_plain_one_and_learns_its_gates(name):
    plain, gated = built(name), built(name, feature_gate=2)
    gates = [m for m in gated.modules() if isinstance(m, FeatureGate)]
    assert gates
    state = gated.state_dict()
    state.update(plain.state_dict())  # every plain weight; the gates keep theirs
    gated.load_state_dict(state)
    data = batch()
    out_plain, out_gated = plain(data.features), gated(data.features)
    for k in out_plain:
        torch.testing.assert_close(out_gated[k], out_plain[k])
    losses = sbmm.objective_losses(gated.tower_specs, out_gated, data)
    sum(losses.values()).backward()
    assert all(g.up.grad.abs().sum() > 0 for g in gates)


def test_task_embeddings_give_each_tower_tables_of_its_own_beside_the_shared():
    model = built("MMoE", task_embeddings=True)
    inputs = model.inputs
    assert isinstance(inputs, sbmm.inputs.TaskInputs)
    assert list(inputs.own) == ["feed", "video"]
    assert list(inputs.own["feed"].embeddings) == ["item"]  # ids only, no dense
    assert inputs.dim == D_IN + 2 * 3
    x = inputs(batch().features)
    assert x.shape == (32, D_IN + 6)
    keep = inputs.trained_by("video")
    assert keep.tolist() == [True] * D_IN + [False] * 3 + [True] * 3
    out = model(batch().features)
    assert out["click"].shape == out["like"].shape == (32,)
    shared = {id(p) for p in model.shared_parameters()}
    assert all(id(p) not in shared for p in inputs.own.parameters())
    assert all(id(p) in shared for p in inputs.shared.parameters())


@pytest.mark.parametrize("name", ["MMoE", "OMoE"])
def test_a_task_s_embeddings_get_no_gradient_from_the_other_task(name):
    model = built(name, task_embeddings=True)
    data = batch()
    tables = {
        t: model.inputs.own[t].embeddings["item"].weight for t in ("feed", "video")
    }
    shared = model.inputs.shared.embeddings["item"].weight
    losses = sbmm.objective_losses(model.tower_specs, model(data.features), data)
    for objective, own, other in (
        ("click", "feed", "video"),
        ("like", "video", "feed"),
    ):
        grads = torch.autograd.grad(
            losses[objective], [tables[own], tables[other], shared], retain_graph=True,
            allow_unused=True,
        )  # fmt: skip
        assert grads[0].abs().sum() > 0  # its own
        assert grads[1] is None or grads[1].abs().sum() == 0  # never the other's
        assert grads[2].abs().sum() > 0  # and the shared ones


def test_all_forward_every_tower_reads_every_task_s_embeddings():
    model = built("MMoE", task_embeddings=True)
    x = model.inputs(batch().features)  # (B, d_in)
    h = model.represent(x)
    e = model.experts(x)
    for t in ("feed", "video"):  # the same values as with no detaching at all
        torch.testing.assert_close(h[t], model.gates[t](x, e))
    with torch.no_grad():  # the other task's table moves what a tower reads
        model.inputs.own["video"].embeddings["item"].weight.add_(1.0)
    assert not torch.allclose(model.represent(model.inputs(batch().features))["feed"],
                              h["feed"])  # fmt: skip


def test_bad_options_name_the_option():
    with pytest.raises(ValueError, match="expert_activation.*'swish'"):
        built("MMoE", expert_activation="swish")
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="feature_gate"):
            built("PLE", feature_gate=bad)
    with pytest.raises(TypeError, match="expert_norm.*'yes'"):
        built("MMoE", expert_norm="yes")
    with pytest.raises(TypeError, match="task_embeddings.*1"):
        built("MMoE", task_embeddings=1)
    dense = [sbmm.Dense("x", 5)]
    with pytest.raises(ValueError, match="task_embeddings.*Categorical"):
        sbmm.MMoE(dense, towers(), task_embeddings=True)


@pytest.mark.parametrize(
    "options",
    [
        dict(expert_norm=True, expert_activation="silu"),
        dict(feature_gate=2),
        dict(task_embeddings=True),
    ],
    ids=["norm", "feature_gate", "task_embeddings"],
)
def test_replicas_train_every_fix_as_separate_fits(options):
    train, valid = batch(96, seed=1), batch(48, seed=2)
    run = dict(epochs=2, batch_size=32, lr=1e-2, progress=False)

    def build():
        return GATED["MMoE"](**options)

    replicas = sbmm.fit_replicas(build, train, valid, seeds=(3, 4), **run)
    for seed, model, history in replicas:
        sbmm.seed_everything(seed)
        expected = build()
        expected_history = sbmm.fit(expected, train, valid, seed=seed, **run)
        for name, losses in history.train_loss.items():
            assert losses == pytest.approx(expected_history.train_loss[name], rel=1e-5)
        state, other = model.state_dict(), expected.state_dict()
        for k in state:
            torch.testing.assert_close(state[k], other[k], rtol=1e-4, atol=2e-5, msg=k)
