"""`fit` under torchrun: two gloo processes on the CPU train like one process with the
same global batch, masked and sample-weighted objectives and batches that split unevenly
included, on a hand-made set-up and on the shipped configs/feed.toml."""

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
import torch

import sbmm
from sbmm.train.config import load_run

WORKER = textwrap.dedent("""
    import os, sys
    import torch
    import sbmm

    out = sys.argv[1]
    rank = int(os.environ["RANK"])
    saved = []
    real_save = torch.save
    torch.save = lambda obj, f, *a, **k: (  # who writes?
        saved.append(str(f)), real_save(obj, f, *a, **k)
    )

    sys.path.insert(0, sys.argv[2])
    from test_distributed import BATCH_SIZE, SETUPS

    data, model = SETUPS[sys.argv[3]]()
    history = sbmm.fit(model, data, data, epochs=3, batch_size=BATCH_SIZE, seed=1,
                       progress=False, checkpoint=os.path.join(out, "run.pt"))
    torch.save = real_save
    try:  # a strategy that takes gradients outside DDP must refuse to run data-parallel
        sbmm.fit(model, data, epochs=1, progress=False,
                 weighting=sbmm.weighting.GradNorm())
        refused = ""
    except ValueError as error:
        refused = str(error)
    torch.save({"params": model.state_dict(), "history": history.train_loss,
                "saved": saved, "refused": refused},
               os.path.join(out, f"rank{rank}.pt"))
""")


BATCH_SIZE = 61  # global batches of 61 split 31 / 30 between two ranks


def run_setup():
    """The data and model both runs train: a regression objective, a binary one, and a
    conditional one on a third of the rows, masked and with sample weights."""
    data = sbmm.data.correlated_tasks(n=512, p=0.5, d=6, seed=0)
    data.labels["gate"] = (data.labels["y1"] > 0.5).float()
    data.labels["sign"] = (data.labels["y2"] > 0).float()
    weight = sbmm.SampleWeight(
        "y1", transform="log1p", clip=3.0, normalise="batch_mean"
    )
    towers = [
        sbmm.Tower("a", [sbmm.Objective("y1", "regression"), sbmm.Objective("gate")],
                   hidden=(8,)),
        sbmm.Tower(
            "b",
            [sbmm.Objective("sign", given="gate"),
             sbmm.Objective("y2", "regression", given="gate", sample_weight=weight)],
            hidden=(8,),
        ),
    ]  # fmt: skip
    data.labels["y1"] = data.labels["y1"].abs()  # weights >= 0
    sbmm.seed_everything(0)
    return data, sbmm.SharedBottom([sbmm.Dense("x", 6)], towers, bottom=(16, 8))


def feed_config_setup():
    """The README's data-parallel example, configs/feed.toml as shipped (a masked
    conditional play time, an entire-space like), on a smaller log of its world."""
    shipped = Path(__file__).parents[1] / "configs" / "feed.toml"
    text = shipped.read_text()
    assert "n = 200_000" in text
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "feed.toml"
        config.write_text(text.replace("n = 200_000", "n = 1_500"))
        run = load_run(config)
    return run.train, run.model


SETUPS = {"masked": run_setup, "feed.toml": feed_config_setup}


def single_process(setup):
    data, model = SETUPS[setup]()
    history = sbmm.fit(
        model,
        data,
        data,
        epochs=3,
        batch_size=BATCH_SIZE,
        seed=1,
        progress=False,
        device="cpu",
    )
    return model.state_dict(), history.train_loss


@pytest.mark.parametrize("setup", SETUPS)
def test_two_gloo_ranks_train_like_one_process_and_only_rank_0_writes(tmp_path, setup):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", str(script), str(tmp_path),
               str(Path(__file__).parent), setup]  # fmt: skip
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    params, losses = single_process(setup)
    for r in ranks:
        assert all(torch.allclose(r["params"][k], params[k], atol=1e-5) for k in params)
        assert r["history"].keys() == losses.keys()
        assert all(
            abs(a - b) < 1e-5
            for k in losses
            for a, b in zip(r["history"][k], losses[k])
        )
    assert all(
        "GradNorm" in r["refused"] and "data-parallel" in r["refused"] for r in ranks
    )
    assert (
        len(ranks[0]["saved"]) == 3 and ranks[1]["saved"] == []
    )  # a checkpoint per epoch, by rank 0 only
    assert (tmp_path / "run.pt").exists()
