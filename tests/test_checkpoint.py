import copy
import os
import re
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

import sbmm
from sbmm.train.checkpoint import check_checkpoint_path, restore_run, save_checkpoint
from sbmm.weighting import DWA, GradNorm, Uncertainty


def towers():
    return [
        sbmm.Tower("a", [sbmm.Objective("y1", "regression")], hidden=(8,)),
        sbmm.Tower("b", [sbmm.Objective("y2", "regression")], hidden=(8,)),
    ]


def model(seed=0):
    sbmm.seed_everything(seed)
    return sbmm.SharedBottom([sbmm.Dense("x", 6)], towers(), bottom=(16, 8))


DATA = sbmm.data.correlated_tasks(n=300, p=0.5, d=6, seed=0)


@pytest.mark.parametrize(
    "strategy", [sbmm.weighting.Static, Uncertainty, DWA, GradNorm]
)
def test_resuming_continues_the_same_run(tmp_path, strategy):
    straight = model()
    full = sbmm.fit(
        straight,
        DATA,
        DATA,
        epochs=4,
        batch_size=64,
        seed=1,
        progress=False,
        weighting=strategy(),
    )

    path = tmp_path / "run.pt"
    sbmm.fit(
        model(),
        DATA,
        DATA,
        epochs=2,
        batch_size=64,
        seed=1,
        progress=False,
        weighting=strategy(),
        checkpoint=path,
    )
    resumed = model(seed=99)  # different initial weights: the checkpoint must override
    #                           them
    torch.manual_seed(12345)  # and a different generator state: the checkpoint restores
    #                           it
    history = sbmm.fit(
        resumed,
        DATA,
        DATA,
        epochs=4,
        batch_size=64,
        progress=False,
        weighting=strategy(),
        checkpoint=path,
        resume=True,
    )
    assert history.train_loss == full.train_loss and history.weights == full.weights
    assert all(
        torch.equal(a, b)
        for a, b in zip(straight.state_dict().values(), resumed.state_dict().values())
    )


def test_resuming_keeps_the_best_epoch_of_the_whole_run(tmp_path):
    train, valid = DATA.split((0.5, 0.5))
    kwargs = dict(batch_size=16, lr=3e-2, seed=2, progress=False, keep_best=True)
    straight = model()
    full = sbmm.fit(straight, train, valid, epochs=6, **kwargs)
    sbmm.fit(model(), train, valid, epochs=3, checkpoint=tmp_path / "run.pt", **kwargs)
    resumed = model(seed=7)
    history = sbmm.fit(
        resumed,
        train,
        valid,
        epochs=6,
        checkpoint=tmp_path / "run.pt",
        resume=True,
        **kwargs,
    )
    assert history.best_epoch == full.best_epoch
    assert all(
        torch.equal(a, b)
        for a, b in zip(straight.state_dict().values(), resumed.state_dict().values())
    )


def test_a_checkpoint_of_another_strategy_is_refused(tmp_path):
    sbmm.fit(
        model(),
        DATA,
        epochs=1,
        progress=False,
        weighting=DWA(),
        checkpoint=tmp_path / "dwa.pt",
    )
    with pytest.raises(ValueError, match="Uncertainty.*expected \\['log_var'\\]"):
        sbmm.fit(
            model(),
            DATA,
            epochs=2,
            progress=False,
            weighting=Uncertainty(),
            checkpoint=tmp_path / "dwa.pt",
            resume=True,
        )


def test_checkpoint_save_load_gives_identical_predictions(tmp_path):
    trained = model()
    sbmm.fit(
        trained,
        DATA,
        epochs=2,
        batch_size=64,
        progress=False,
        checkpoint=tmp_path / "c.pt",
    )
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
    bf16 = sbmm.fit(
        m := model(),
        DATA,
        epochs=3,
        batch_size=64,
        seed=0,
        progress=False,
        precision="bf16",
    )
    assert bf16.train_loss["total"][-1] < bf16.train_loss["total"][0]
    assert m.bottom[0].weight.dtype == torch.float32  # parameters stay fp32
    compiled = sbmm.fit(
        model(), DATA, epochs=2, batch_size=64, seed=0, progress=False, compile="eager"
    )
    assert compiled.train_loss == plain.train_loss
    with pytest.raises(ValueError, match="precision"):
        sbmm.fit(model(), DATA, precision="fp16", progress=False)


# A bad checkpoint is refused before training, naming the file; the run stays as it was.


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A checkpoint of model() after 2 epochs under Uncertainty, with validation."""
    path = tmp_path_factory.mktemp("saved") / "run.pt"
    sbmm.fit(
        model(),
        DATA,
        DATA,
        epochs=2,
        batch_size=64,
        lr=3e-2,
        seed=1,
        progress=False,
        weighting=Uncertainty(),
        checkpoint=path,
    )
    return path


def run_objects(net, strategy):
    """The optimiser and History `fit` prepares for `net` trained with `strategy`."""
    strategy.bind(net)
    opt = torch.optim.Adam([*net.parameters(), *strategy.parameters()], lr=1e-3)
    names = ["total", *(o.name for o in net.objectives)]
    history = sbmm.History({k: [] for k in names}, {k: [] for k in names})
    history.weights = {o.name: [] for o in net.objectives}
    return opt, history


def snapshot(net, strategy, opt, history):
    """A copy of the run's state: weights, strategy, optimiser, History, generator."""
    state = (
        net.state_dict(),
        strategy.state_dict(),
        opt.state_dict(),
        asdict(history),
        torch.get_rng_state(),
    )
    return copy.deepcopy(state)


def same(a, b) -> bool:
    """Whether two nested structures of dicts, lists and tensors hold equal values."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a.cpu(), b.cpu())
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(same(a[k], b[k]) for k in a)
        )
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return a == b


def named(path) -> str:
    """A pattern matching `path` literally."""
    return re.escape(str(path))


@pytest.mark.parametrize("kind", ["empty", "truncated", "text"])
def test_an_unreadable_checkpoint_is_refused_naming_the_file(tmp_path, saved, kind):
    path = tmp_path / "run.pt"
    contents = {
        "empty": b"",
        "truncated": saved.read_bytes()[:2000],
        "text": b"epochs = 3\n",
    }
    path.write_bytes(contents[kind])
    message = f"checkpoint {named(path)} could not be read"
    with pytest.raises(ValueError, match=message):
        sbmm.load_checkpoint(path)
    fresh = model(seed=3)
    before = copy.deepcopy(fresh.state_dict())
    with pytest.raises(ValueError, match=message):
        sbmm.fit(fresh, DATA, epochs=3, progress=False, checkpoint=path, resume=True)
    assert same(before, fresh.state_dict())


@pytest.mark.parametrize(
    "entry", ["model", "optimizer", "weighting", "history", "towers", "epoch", "rng"]
)
def test_a_checkpoint_lacking_an_entry_is_refused_naming_it(tmp_path, saved, entry):
    state = torch.load(saved, weights_only=False)
    path = tmp_path / "run.pt"
    torch.save({k: v for k, v in state.items() if k != entry}, path)
    missing = f"{named(path)} lacks the entries \\['{entry}'\\]"
    with pytest.raises(ValueError, match=missing):
        sbmm.load_checkpoint(path)
    torch.save(torch.zeros(3), path)
    not_a_dict = f"{named(path)} holds a Tensor, not a checkpoint"
    with pytest.raises(ValueError, match=not_a_dict):
        sbmm.load_checkpoint(path)


def renamed_towers():
    return [
        sbmm.Tower("a", [sbmm.Objective("y1", "regression")], hidden=(8,)),
        sbmm.Tower("c", [sbmm.Objective("y2", "regression")], hidden=(8,)),
    ]


X = [sbmm.Dense("x", 6)]


@pytest.mark.parametrize(
    "other, problem",
    [
        (
            lambda: sbmm.SharedBottom(X, towers(), bottom=(32, 8)),
            r"other shapes: bottom\.0\.weight \(16, 6\) in the file, \(32, 6\) in the "
            r"model",
        ),
        (
            lambda: sbmm.SharedBottom(X, renamed_towers(), bottom=(16, 8)),
            r"missing: towers\.c\.0\.weight.*; unexpected: towers\.b\.0\.weight",
        ),
        (
            lambda: sbmm.MMoE(X, towers(), n_experts=2, expert=(8,)),
            r"missing: experts\..*; unexpected: bottom\.0\.weight",
        ),
    ],
)
def test_resuming_another_models_checkpoint_leaves_the_model_untouched(
    saved, other, problem
):
    fresh = other()
    before = copy.deepcopy(fresh.state_dict())
    where = f"checkpoint {named(saved)} does not fit this {type(fresh).__name__}"
    with pytest.raises(ValueError, match=f"{where}.*{problem}"):
        sbmm.fit(
            fresh,
            DATA,
            DATA,
            epochs=3,
            progress=False,
            weighting=Uncertainty(),
            checkpoint=saved,
            resume=True,
        )
    assert all(torch.equal(before[k], v.cpu()) for k, v in fresh.state_dict().items())


def test_a_refused_checkpoint_leaves_optimizer_weighting_and_history_untouched(saved):
    wide = sbmm.SharedBottom(X, towers(), bottom=(32, 8))
    strategy = Uncertainty()
    opt, history = run_objects(wide, strategy)
    before = snapshot(wide, strategy, opt, history)
    with pytest.raises(ValueError, match=f"{named(saved)} does not fit"):
        restore_run(saved, wide, opt, strategy, history)
    assert same(before, snapshot(wide, strategy, opt, history))


def test_a_load_that_fails_after_the_checks_is_undone(saved, monkeypatch):
    net, strategy = model(seed=3), Uncertainty()
    opt, history = run_objects(net, strategy)
    before = snapshot(net, strategy, opt, history)
    load, calls = opt.load_state_dict, []

    def fail_once(state):  # the model and the weighting are loaded by then
        calls.append(state)
        if len(calls) == 1:
            raise RuntimeError("disk gone")
        load(state)

    monkeypatch.setattr(opt, "load_state_dict", fail_once)
    undone = f"{named(saved)} could not be restored.*disk gone"
    with pytest.raises(ValueError, match=undone):
        restore_run(saved, net, opt, strategy, history)
    assert len(calls) == 2  # the optimiser's own state was put back too
    assert same(before, snapshot(net, strategy, opt, history))
    saved_log_var = sbmm.load_checkpoint(saved)["weighting"]["log_var"]
    assert not torch.equal(saved_log_var, strategy.log_var)  # loading would change it


def test_restore_run_loads_a_fitting_checkpoint(saved):
    net, strategy = model(seed=3), Uncertainty()
    opt, history = run_objects(net, strategy)
    state = sbmm.load_checkpoint(saved)
    assert restore_run(saved, net, opt, strategy, history) == (2, None)
    assert same(state["model"], net.state_dict())
    assert history.train_loss == state["history"]["train_loss"]
    assert torch.equal(strategy.log_var.detach(), state["weighting"]["log_var"])


def test_resuming_with_validation_data_the_checkpoint_lacks_is_refused(tmp_path):
    path = tmp_path / "run.pt"
    sbmm.fit(model(), DATA, epochs=1, progress=False, checkpoint=path)
    refused = f"{named(path)}: its history's valid_loss is for \\[\\]"
    with pytest.raises(ValueError, match=refused):
        sbmm.fit(
            model(), DATA, DATA, epochs=2, progress=False, checkpoint=path, resume=True
        )


# Loading never runs code from the file.


def leave_marker(path: str) -> None:
    """What a hostile checkpoint would call while it is unpickled."""
    Path(path).write_text("ran")


class Hostile:
    """An object whose unpickling calls `leave_marker`."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return leave_marker, (self.marker,)


def test_a_checkpoint_whose_pickle_calls_a_function_is_refused_without_calling_it(
    tmp_path, saved
):
    marker, path = tmp_path / "marker", tmp_path / "hostile.pt"
    state = torch.load(saved, weights_only=True)
    torch.save({**state, "rng": Hostile(marker)}, path)
    torch.load(path, weights_only=False)  # unpickled the unsafe way, it would run
    assert marker.read_text() == "ran"
    marker.unlink()

    refused = f"checkpoint {named(path)} could not be read: it holds .*leave_marker"
    with pytest.raises(ValueError, match=refused):
        sbmm.load_checkpoint(path)
    net, strategy = model(seed=3), Uncertainty()
    opt, history = run_objects(net, strategy)
    before = snapshot(net, strategy, opt, history)
    with pytest.raises(ValueError, match=refused):
        restore_run(path, net, opt, strategy, history)
    assert not marker.exists()
    assert same(before, snapshot(net, strategy, opt, history))


def test_checkpoints_hold_plain_data_with_binary_objectives_and_the_best_epoch(
    tmp_path,
):
    binary = [sbmm.Tower("t", [sbmm.Objective("click")], hidden=(4,))]
    data = sbmm.data.FeedSimulator().simulate(600, seed=0)
    sbmm.seed_everything(0)
    net = sbmm.SharedBottom(data.feature_specs, binary, bottom=(8,))
    sbmm.fit(net, data.train, data.valid, epochs=2, progress=False, keep_best=True,
             checkpoint=tmp_path / "c.pt")  # fmt: skip
    state = sbmm.load_checkpoint(tmp_path / "c.pt")  # weights_only=True
    assert isinstance(state["history"]["valid_metrics"][0]["click"]["auc"], float)
    assert state["towers"][0]["name"] == "click" and state["best_model"] is not None


# Resuming refuses towers declared otherwise and fewer epochs than were finished.


@pytest.mark.parametrize(
    "changed, problem",
    [
        (
            sbmm.Objective("y2", "binary"),
            "objective 'y2': kind 'regression' in the file",
        ),
        (
            sbmm.Objective("y2", "regression", label="y1"),
            "objective 'y2': label None in the file, 'y1' in this run",
        ),
        (
            sbmm.Objective("y2", "regression", weight=2.0),
            "objective 'y2': weight 1.0 in the file, 2.0 in this run",
        ),
    ],
)
def test_resuming_with_an_objective_declared_otherwise_is_refused(
    saved, changed, problem
):
    declared = [towers()[0], sbmm.Tower("b", [changed], hidden=(8,))]
    sbmm.seed_everything(3)
    net, strategy = sbmm.SharedBottom(X, declared, bottom=(16, 8)), Uncertainty()
    opt, history = run_objects(net, strategy)
    before = snapshot(net, strategy, opt, history)
    with pytest.raises(ValueError, match=f"{named(saved)} .*{re.escape(problem)}"):
        restore_run(saved, net, opt, strategy, history)
    assert same(before, snapshot(net, strategy, opt, history))


def test_resuming_with_fewer_epochs_than_the_checkpoint_finished_is_refused(saved):
    net, strategy = model(seed=3), Uncertainty()
    opt, history = run_objects(net, strategy)
    before = snapshot(net, strategy, opt, history)
    fewer = f"{named(saved)} has finished 2 epochs, more than the 1 asked for"
    with pytest.raises(ValueError, match=fewer):
        restore_run(saved, net, opt, strategy, history, epochs=1)
    assert same(before, snapshot(net, strategy, opt, history))
    assert restore_run(saved, net, opt, strategy, history, epochs=2) == (2, None)


# Paths are checked before training; a failed write leaves nothing behind.


def test_an_unusable_checkpoint_path_is_refused_naming_it(tmp_path):
    assert check_checkpoint_path(tmp_path / "new" / "run.pt") == tmp_path / "new/run.pt"
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=f"{named(tmp_path / 'file')} is a file"):
        check_checkpoint_path(tmp_path / "file" / "run.pt")
    with pytest.raises(ValueError, match=f"checkpoint {named(tmp_path)} is a folder"):
        check_checkpoint_path(tmp_path)
    with pytest.raises(TypeError, match="checkpoint must be a file path, got 3"):
        check_checkpoint_path(3)


def test_a_folder_without_write_permission_is_refused(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    writable = os.access  # root may write anywhere: the permission is simulated
    monkeypatch.setattr(
        os, "access", lambda p, mode: Path(p) != locked and writable(p, mode)
    )
    with pytest.raises(ValueError, match=f"the folder {named(locked)} is not writable"):
        check_checkpoint_path(locked / "run.pt")
    with pytest.raises(ValueError, match=f"the folder {named(locked)} is not writable"):
        check_checkpoint_path(locked / "runs" / "run.pt")


def test_a_failed_write_leaves_no_temporary_file_and_the_old_checkpoint(
    tmp_path, saved, monkeypatch
):
    path = tmp_path / "run.pt"
    path.write_bytes(saved.read_bytes())
    net, strategy = model(), Uncertainty()
    opt, history = run_objects(net, strategy)

    def disk_full(state, file):
        Path(file).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, model=net, optimizer=opt, weighting=strategy,
                        history=history, epoch=3)  # fmt: skip
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]
    assert path.read_bytes() == saved.read_bytes()


def test_fit_refuses_an_unusable_checkpoint_path_before_the_first_step(tmp_path):
    (tmp_path / "file").write_text("")
    net = model()
    before = copy.deepcopy(net.state_dict())
    with pytest.raises(ValueError, match=f"{named(tmp_path / 'file')} is a file"):
        sbmm.fit(net, DATA, epochs=1, checkpoint=tmp_path / "file" / "run.pt")
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_fit_refuses_to_resume_a_run_longer_than_it_asks_for(tmp_path):
    path = tmp_path / "run.pt"
    sbmm.fit(model(), DATA, epochs=3, seed=0, checkpoint=path)
    net = model()
    before = copy.deepcopy(net.state_dict())
    with pytest.raises(ValueError, match="has finished 3 epochs, more than the 2"):
        sbmm.fit(net, DATA, epochs=2, seed=0, checkpoint=path, resume=True)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
