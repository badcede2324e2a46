"""`python -m sbmm.train CONFIG.toml`: a run from a config file, no notebook."""

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

import sbmm
from sbmm.train.__main__ import main
from sbmm.train.config import architectures, load_run, strategies

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """
[data]
simulator = "correlated_tasks"
n = 4000
seed = 0
knobs = {{ p = 0.9, d = 8 }}

[model]
architecture = "{architecture}"
options = {options}

[[towers]]
name = "a"
hidden = [16]
objectives = [{{ name = "y1", kind = "regression" }}]

[[towers]]
name = "b"
hidden = [16]
objectives = [{{ name = "y2", kind = "regression" }}]

[train]
epochs = 8
batch_size = 64
lr = 0.003
seed = 0
weighting = "{weighting}"
checkpoint = "run.pt"
"""


def write(
    tmp_path,
    architecture="SharedBottom",
    options="{ bottom = [32, 16] }",
    weighting="Static",
):
    """CONFIG with these choices, written to tmp_path/run.toml; returns its path."""
    path = tmp_path / "run.toml"
    path.write_text(
        CONFIG.format(architecture=architecture, options=options, weighting=weighting)
    )
    return path


def test_a_config_trains_and_reports_test_metrics(tmp_path):
    elsewhere = tmp_path / "elsewhere"  # the run starts here; its checkpoint must not
    elsewhere.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "sbmm.train", str(write(tmp_path))],
        capture_output=True,
        text=True,
        timeout=300,
        env={"TQDM_DISABLE": "1", **os.environ},
        cwd=elsewhere,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"checkpoint: {tmp_path / 'run.pt'}" in result.stdout
    assert not any(elsewhere.iterdir())
    assert result.stdout.count("validation loss") == 8
    metrics = json.loads(result.stdout[result.stdout.index("{") :])["test"]
    run = load_run(write(tmp_path))
    for name in ("y1", "y2"):
        label_std = float(run.test.labels[name].std())
        # it learned: far below predicting the mean
        assert metrics[name]["rmse"] < 0.5 * label_std
    assert (tmp_path / "run.pt").exists()


def test_config_builds_the_declared_model_and_strategy(tmp_path):
    run = load_run(write(tmp_path, "MMoE", "{ n_experts = 3, expert = [16] }", "DWA"))
    assert type(run.model).__name__ == "MMoE" and len(run.model.experts.nets) == 3
    assert (
        type(run.fit_options["weighting"]).__name__ == "DWA"
        and run.fit_options["epochs"] == 8
    )


def test_the_seed_fixes_the_initial_weights_too(tmp_path):
    first, second = (load_run(write(tmp_path)).model.state_dict() for _ in range(2))
    assert all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            ("SharedBottom", "Transformer"),
            "architecture must be one of MMoE, OMoE, PLE, SharedBottom, SingleTask",
        ),
        (
            ('weighting = "Static"', 'weighting = "Magic"'),
            "weighting must be one of .*PCGrad, Static",
        ),
        (("correlated_tasks", "imagenet"), "simulator"),
        (
            ("lr = 0.003", "learning_rate = 0.003"),
            r"\[train\] has unknown keys \['learning_rate'\]; known: epochs",
        ),
        (
            ("[train]", "[trian]"),
            r"\[trian\] is not a known section; known: data, model, towers, train",
        ),
        (
            ("n = 4000", "size = 4000"),
            r"\[data\] has unknown keys \['size'\]; known: simulator, n, seed",
        ),
        (
            ("p = 0.9", "rho = 0.9"),
            r"\[data\] knobs of the correlated_tasks simulator has unknown keys "
            r"\['rho'\]; known: p, d, m, c, noise",
        ),
        (
            ("architecture =", "architcture ="),
            r"\[model\] has unknown keys \['architcture'\]; known: architecture, "
            r"options",
        ),
        (
            ("bottom = [32, 16]", "bottom = [32, 16], n_experts = 4"),
            r"\[model\] option 'n_experts' is not taken by SharedBottom; its options: "
            r"bottom",
        ),
        (
            ('name = "a"\nhidden', 'name = "a"\nhiden'),
            r"\[\[towers\]\] 'a' has unknown keys \['hiden'\]; "
            r"known: name, objectives, hidden, weight",
        ),
        (
            ('name = "y1", kind', 'name = "y1", knd'),
            r"\[\[towers\]\] 'a' objective 'y1' has unknown keys \['knd'\]; "
            r"known: name, kind",
        ),
        (
            ('"y1", kind = "regression"', '"y1", kind = "regresion"'),
            r"\[\[towers\]\] 'a': objective 'y1': kind must be 'binary' or "
            r"'regression'",
        ),
        (
            ('{ name = "y2", kind', "{ kind"),
            r"\[\[towers\]\] 'b': each objective needs a name",
        ),
    ],
)
def test_bad_configs_raise_naming_the_file_section_and_key(tmp_path, change, message):
    path = write(tmp_path)
    text = path.read_text()
    assert change[0] in text  # the change applies
    path.write_text(text.replace(*change))
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}: .*{message}"):
        load_run(path)


def test_a_bad_config_stops_the_command_before_training(tmp_path, capsys):
    path = write(tmp_path)
    path.write_text(path.read_text().replace("[train]", "[trian]"))
    with pytest.raises(SystemExit) as exited:
        main([str(path)])
    assert exited.value.code == 2
    assert f"{path}: [trian] is not a known section" in capsys.readouterr().err
    assert not (tmp_path / "run.pt").exists()


def test_the_registries_list_every_architecture_and_strategy():
    assert {"SharedBottom", "SingleTask", "MMoE", "PLE"} <= set(architectures())
    assert {"Static", "Uncertainty", "GradNorm", "DWA", "PCGrad"} <= set(strategies())
    assert "MultiTaskModel" not in architectures() and "Weighting" not in strategies()


class OneLayer(sbmm.SharedBottom):
    """An architecture added after the config code: a shared bottom of one layer."""

    def __init__(self, features, towers, width: int = 8):
        super().__init__(features, towers, bottom=(width,))


class Halved(sbmm.weighting.Static):
    """A strategy added after the config code."""


def test_a_new_architecture_or_strategy_needs_no_registration(tmp_path, monkeypatch):
    monkeypatch.setattr(sbmm.models, "OneLayer", OneLayer, raising=False)
    monkeypatch.setattr(sbmm.weighting, "Halved", Halved, raising=False)
    run = load_run(write(tmp_path, "OneLayer", "{ width = 12 }", "Halved"))
    assert type(run.model) is OneLayer and run.model.bottom[0].out_features == 12
    assert type(run.fit_options["weighting"]) is Halved
    refused = "option 'bottom' is not taken by OneLayer; its options: width"
    with pytest.raises(ValueError, match=refused):
        load_run(write(tmp_path, "OneLayer", "{ bottom = [12] }"))


def test_a_relative_checkpoint_is_taken_from_the_config_folder(tmp_path):
    assert load_run(write(tmp_path)).fit_options["checkpoint"] == tmp_path / "run.pt"
    example = tomllib.loads((ROOT / "configs" / "feed.toml").read_text())["train"]
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    # configs/feed.toml checkpoints into configs/runs/, which git ignores
    assert Path(example["checkpoint"]).parts[0] == "runs" and "runs/" in ignored
