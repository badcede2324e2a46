import pytest
import torch

import sbmm
from sbmm.weighting import DWA, GradNorm, Uncertainty


def towers():
    return [sbmm.Tower("a", [sbmm.Objective("y1", "regression")], hidden=(8,)),
            sbmm.Tower("b", [sbmm.Objective("y2", "regression")], hidden=(8,))]


def model(seed=0):
    sbmm.seed_everything(seed)
    return sbmm.SharedBottom([sbmm.Dense("x", 6)], towers(), bottom=(16, 8))


DATA = sbmm.data.correlated_tasks(n=300, p=0.5, d=6, seed=0)


@pytest.mark.parametrize("strategy", [sbmm.weighting.Static, Uncertainty, DWA, GradNorm])
def test_resuming_continues_the_same_run(tmp_path, strategy):
    straight = model()
    full = sbmm.fit(straight, DATA, DATA, epochs=4, batch_size=64, seed=1, progress=False, weighting=strategy())

    path = tmp_path / "run.pt"
    sbmm.fit(model(), DATA, DATA, epochs=2, batch_size=64, seed=1, progress=False, weighting=strategy(), checkpoint=path)
    resumed = model(seed=99)  # different initial weights: the checkpoint must override them
    torch.manual_seed(12345)  # and a different generator state: the checkpoint restores it
    history = sbmm.fit(resumed, DATA, DATA, epochs=4, batch_size=64, progress=False, weighting=strategy(),
                       checkpoint=path, resume=True)
    assert history.train_loss == full.train_loss and history.weights == full.weights
    assert all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()))


def test_resuming_keeps_the_best_epoch_of_the_whole_run(tmp_path):
    train, valid = DATA.split((0.5, 0.5))
    kwargs = dict(batch_size=16, lr=3e-2, seed=2, progress=False, keep_best=True)
    straight = model()
    full = sbmm.fit(straight, train, valid, epochs=6, **kwargs)
    sbmm.fit(model(), train, valid, epochs=3, checkpoint=tmp_path / "run.pt", **kwargs)
    resumed = model(seed=7)
    history = sbmm.fit(resumed, train, valid, epochs=6, checkpoint=tmp_path / "run.pt", resume=True, **kwargs)
    assert history.best_epoch == full.best_epoch
    assert all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()))


def test_a_checkpoint_of_another_strategy_is_refused(tmp_path):
    sbmm.fit(model(), DATA, epochs=1, progress=False, weighting=DWA(), checkpoint=tmp_path / "dwa.pt")
    with pytest.raises(ValueError, match="Uncertainty.*expected \\['log_var'\\]"):
        sbmm.fit(model(), DATA, epochs=2, progress=False, weighting=Uncertainty(), checkpoint=tmp_path / "dwa.pt",
                 resume=True)


def test_checkpoint_save_load_gives_identical_predictions(tmp_path):
    trained = model()
    sbmm.fit(trained, DATA, epochs=2, batch_size=64, progress=False, checkpoint=tmp_path / "c.pt")
    state = sbmm.load_checkpoint(tmp_path / "c.pt")
    assert state["epoch"] == 2 and len(state["history"]["train_loss"]["total"]) == 2
    fresh = model(seed=5)
    fresh.load_state_dict(state["model"])
    a, b = sbmm.predict(trained, DATA), sbmm.predict(fresh, DATA)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_without_a_file_to_resume_from():
    with pytest.raises(ValueError, match="checkpoint"):
        sbmm.fit(model(), DATA, epochs=1, resume=True, progress=False)
    with pytest.raises(ValueError, match="no checkpoint"):
        sbmm.load_checkpoint("/nonexistent/run.pt")


def test_bf16_autocast_trains_and_compile_runs_the_same_computation():
    plain = sbmm.fit(model(), DATA, epochs=2, batch_size=64, seed=0, progress=False)
    bf16 = sbmm.fit(m := model(), DATA, epochs=3, batch_size=64, seed=0, progress=False, precision="bf16")
    assert bf16.train_loss["total"][-1] < bf16.train_loss["total"][0]
    assert m.bottom[0].weight.dtype == torch.float32  # parameters stay fp32
    compiled = sbmm.fit(model(), DATA, epochs=2, batch_size=64, seed=0, progress=False, compile="eager")
    assert compiled.train_loss == plain.train_loss
    with pytest.raises(ValueError, match="precision"):
        sbmm.fit(model(), DATA, precision="fp16", progress=False)
