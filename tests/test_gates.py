"""Gates with batch norm (`gate_batch_norm`, torch-rechub's gates): what they compute,
that the default gate is unchanged, and that replicas train them as separate fits."""

import pytest
import torch
from torch import nn

import sbmm
from sbmm.data import FeedSimulator
from sbmm.models.experts import Gate

DATA = FeedSimulator().simulate(400, seed=0)
TOWERS = [
    sbmm.Tower("feed", [sbmm.Objective("click")], hidden=(8,)),
    sbmm.Tower("video", [sbmm.Objective("like", given="click")], hidden=(8,)),
]
GATED = {
    "MMoE": lambda **o: sbmm.MMoE(DATA.feature_specs, TOWERS, expert=(8,), **o),
    "OMoE": lambda **o: sbmm.OMoE(DATA.feature_specs, TOWERS, expert=(8,), **o),
    "PLE": lambda **o: sbmm.PLE(DATA.feature_specs, TOWERS, expert=(8,), levels=2, **o),
}


def test_a_batch_normalised_gate_normalises_its_logits_before_the_softmax():
    torch.manual_seed(0)
    gate = Gate(6, 3, batch_norm=True).train()
    assert gate.linear.bias is None  # batch norm's shift takes the bias's place
    x = 5 + 3 * torch.randn(256, 6)
    logits = gate.norm(gate.linear(x))  # (B, 3)
    assert logits.mean(0).abs().max() < 1e-5
    std = logits.std(0, unbiased=False)
    assert torch.allclose(std, torch.ones(3), atol=1e-3)
    weights = gate.weights(x)
    assert torch.allclose(weights, torch.softmax(logits, -1))
    assert torch.allclose(weights.sum(-1), torch.ones(256))
    with pytest.raises(TypeError, match="gate_batch_norm.*'yes'"):
        Gate(6, 3, batch_norm="yes")


@pytest.mark.parametrize("name", GATED)
def test_gates_are_plain_by_default_and_batch_normalised_on_request(name):
    torch.manual_seed(0)
    plain = GATED[name]()
    torch.manual_seed(0)
    normed = GATED[name](gate_batch_norm=True)
    gates = [m for m in normed.modules() if isinstance(m, Gate)]
    assert gates and all(isinstance(g.norm, nn.BatchNorm1d) for g in gates)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in plain.modules())
    # The plain model is the one the library built before the option existed: its
    # weights under the same seed are those of the model with the option off.
    torch.manual_seed(0)
    again = GATED[name](gate_batch_norm=False)
    for (k, a), (_, b) in zip(plain.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k


def test_replicas_train_batch_normalised_gates_as_separate_fits():
    train, valid = DATA.train, DATA.valid
    run = dict(epochs=2, batch_size=64, lr=1e-2)

    def build():
        return GATED["MMoE"](gate_batch_norm=True)

    replicas = sbmm.fit_replicas(build, train, valid, seeds=(1, 2), **run)
    for seed, model, history in replicas:
        sbmm.seed_everything(seed)
        expected = build()
        expected_history = sbmm.fit(expected, train, valid, seed=seed, **run)
        for name, losses in history.train_loss.items():
            assert losses == pytest.approx(expected_history.train_loss[name], rel=1e-5)
        state, other = model.state_dict(), expected.state_dict()
        for k in state:
            torch.testing.assert_close(state[k], other[k], rtol=1e-4, atol=2e-5, msg=k)
