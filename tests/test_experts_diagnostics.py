"""Expert diagnostics: what each number measures (on gates and experts set by hand),
that they are recorded at the chosen epochs in `fit` and `fit_replicas` without
changing the training, and their errors and figures."""

import math

import matplotlib
import numpy as np
import pytest
import torch
from expert_world import FEATURES, batch, towers

import sbmm
from sbmm.expert_diagnostics import ExpertDiagnostics, expert_snapshot

matplotlib.use("Agg")
pytestmark = pytest.mark.filterwarnings("ignore::sbmm.NotConverged")


def mmoe(seed=0, n_experts=4, **options):
    torch.manual_seed(seed)
    return sbmm.MMoE(FEATURES, towers(), n_experts=n_experts, expert=(8,), **options)


def set_gate(gate, logits):
    """A gate that ignores its input: softmax(logits) for every sample."""
    with torch.no_grad():
        gate.linear.weight.zero_()
        gate.linear.bias.copy_(torch.tensor(logits))


def test_use_entropy_and_capture_of_gates_set_by_hand():
    model = mmoe()
    set_gate(model.gates["feed"], [0.0, 0.0, 0.0, 0.0])  # uniform
    set_gate(model.gates["video"], [50.0, 0.0, 0.0, 0.0])  # all on expert 0
    s = expert_snapshot(model, batch(64))
    assert s.experts == ("0", "1", "2", "3") and s.tasks == ("feed", "video")
    assert s.use.shape == (4, 2) and np.allclose(s.use.sum(0), 1)
    assert np.allclose(s.use[:, 0], 0.25) and s.use[0, 1] == pytest.approx(1)
    assert s.entropy[0] == pytest.approx(math.log(4), rel=1e-5)
    assert s.entropy[1] == pytest.approx(0, abs=1e-5)
    # expert 0: 1.25 of gate mass, 1 from video; the others only feed's
    assert s.capture[0] == pytest.approx(1 / 1.25, rel=1e-5)
    assert np.allclose(s.capture[1:], 1, atol=1e-6)


def test_dead_units_and_output_norms_of_experts_set_by_hand():
    model = mmoe()
    with torch.no_grad():  # expert 2 never fires: its ReLU sees −1000 at least
        model.experts.nets[2][0].weight.zero_()
        model.experts.nets[2][0].bias.fill_(-1000.0)
    data = batch(64)
    s = expert_snapshot(model, data)
    assert s.dead[2] == 1 and s.output_norm[2] == 0
    assert (s.dead[[0, 1, 3]] < 1).all()
    with torch.no_grad():
        expected = model.experts.nets[1](model.inputs(data.features)).norm(dim=1)
    expected = expected.mean()
    assert s.output_norm[1] == pytest.approx(float(expected), rel=1e-5)


def test_gradient_norms_are_each_task_s_on_each_expert():
    model = mmoe()
    data = batch(64)
    s = expert_snapshot(model, data)
    losses = sbmm.objective_losses(model.tower_specs, model(data.features), data)
    params = list(model.experts.nets[3].parameters())
    grads = torch.autograd.grad(losses["like"], params)
    expected = torch.cat([g.flatten() for g in grads]).norm()
    assert s.grad_norm.shape == (4, 2) and (s.grad_norm > 0).all()
    assert s.grad_norm[3, 1] == pytest.approx(float(expected), rel=1e-4)


def test_ple_experts_a_tower_s_gate_cannot_see_get_no_use_and_no_gradient():
    torch.manual_seed(0)
    model = sbmm.PLE(FEATURES, towers(), n_specific=2, n_shared=1, expert=(8,))
    s = expert_snapshot(model, batch(64))
    assert s.experts == ("feed.0", "feed.1", "video.0", "video.1", "shared.0")
    feed, video = 0, 1
    assert (s.use[2:4, feed] == 0).all() and (s.use[0:2, video] == 0).all()
    assert (s.grad_norm[2:4, feed] == 0).all() and (s.grad_norm[0:2, video] == 0).all()
    assert (s.grad_norm[:2, feed] > 0).all() and (s.grad_norm[4] > 0).all()
    assert np.allclose(s.capture[:4], 1)  # a task's own experts are all its own
    assert np.allclose(s.use.sum(0), 1)
    weights = model.gate_weights(batch(64).features)["video"].mean(0)  # own, shared
    assert np.allclose(s.use[[2, 3, 4], video], weights.detach().numpy(), atol=1e-6)


def test_recorded_at_the_chosen_epochs_and_training_is_unchanged():
    train, valid = batch(128, seed=1), batch(64, seed=2)
    run = dict(epochs=5, batch_size=32, lr=1e-2, progress=False, seed=7)
    diagnostics = ExpertDiagnostics(valid, every=2)
    model = mmoe(dropout=0.2).train()  # dropout: any stray random draw would show
    with_them = sbmm.fit(model, train, valid, epoch_callbacks=[diagnostics], **run)
    without = sbmm.fit(mmoe(dropout=0.2), train, valid, **run)
    assert with_them.train_loss == without.train_loss
    assert diagnostics.seeds == [7]
    epochs, use = diagnostics.series("use")
    assert epochs.tolist() == [0, 2, 4] and use.shape == (3, 4, 2)
    assert not np.allclose(use[0], use[-1])  # the gates moved
    assert diagnostics.series("grad_norm", 7)[1].shape == (3, 4, 2)


def test_replicas_record_each_seed_as_its_fit_would():
    train, valid = batch(128, seed=1), batch(64, seed=2)
    run = dict(epochs=3, batch_size=32, lr=1e-2, progress=False)
    diagnostics = ExpertDiagnostics(valid[:32])
    sbmm.fit_replicas(
        mmoe, train, valid, seeds=(1, 2), epoch_callbacks=[diagnostics], **run
    )
    assert diagnostics.seeds == [1, 2]
    alone = ExpertDiagnostics(valid[:32])
    sbmm.seed_everything(2)
    sbmm.fit(mmoe(), train, valid, seed=2, epoch_callbacks=[alone], **run)
    for field in ("use", "entropy", "output_norm", "grad_norm"):
        epochs, values = diagnostics.series(field, 2)
        assert epochs.tolist() == [0, 1, 2, 3]
        np.testing.assert_allclose(values, alone.series(field)[1], rtol=1e-3, atol=1e-5)


def test_a_model_is_measured_in_evaluation_mode_and_left_in_its_own():
    model = mmoe(expert_norm=True).train()
    running = model.experts.nets[0][1].running_mean.clone()
    expert_snapshot(model, batch(64))
    assert model.training
    assert torch.equal(model.experts.nets[0][1].running_mean, running)  # not updated
    expert_snapshot(model.eval(), batch(64))
    assert not model.training


def test_bad_input_is_named():
    shared = sbmm.SharedBottom(FEATURES, towers(), bottom=(8,))
    with pytest.raises(ValueError, match="gated model.*SharedBottom"):
        expert_snapshot(shared, batch(64))
    with pytest.raises(TypeError, match="probe must be an sbmm.Batch"):
        ExpertDiagnostics({"x": torch.zeros(3)})
    with pytest.raises(ValueError, match="every must be an integer >= 1, got 0"):
        ExpertDiagnostics(batch(64), every=0)
    diagnostics = ExpertDiagnostics(batch(64))
    diagnostics(0, mmoe(), seed=3)
    with pytest.raises(ValueError, match="field must be one of.*'usage'"):
        diagnostics.series("usage")
    with pytest.raises(ValueError, match="no run with seed 4"):
        diagnostics.series("use", 4)


def test_figures_of_gates_over_training_and_of_expert_use():
    import matplotlib.pyplot as plt

    diagnostics = ExpertDiagnostics(batch(64))
    model = mmoe()
    for epoch in range(3):
        diagnostics(epoch, model)
        with torch.no_grad():
            model.gates["video"].linear.bias[0] += 2.0
    axes = sbmm.plot.plot_gate_weights(diagnostics, title="gates")
    assert [ax.get_title() for ax in axes] == ["feed", "video"]
    lines = axes[1].get_lines()
    assert len(lines) == 4 and lines[0].get_ydata()[-1] > lines[0].get_ydata()[0]
    assert axes[0].figure.get_size_inches()[0] <= 6.5
    with pytest.raises(ValueError, match="tasks must name.*'like'"):
        sbmm.plot.plot_gate_weights(diagnostics, title="gates", tasks=["like"])
    snapshot = diagnostics.snapshots[None][-1]
    ax = sbmm.plot.plot_expert_use(snapshot, title="use")
    heights = [p.get_height() for p in ax.patches]
    assert len(heights) == 8 and np.allclose(
        sorted(heights), sorted(snapshot.use.ravel())
    )
    assert ax.figure.get_size_inches()[0] <= 6.5
    plt.close("all")
