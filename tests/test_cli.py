"""`python -m sbmm.train CONFIG.toml`: a run from a config file, no notebook."""

import json
import subprocess
import sys

import pytest
import torch

from sbmm.train.config import load_run

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
checkpoint = "{checkpoint}"
"""


def write(tmp_path, architecture="SharedBottom", options="{ bottom = [32, 16] }", weighting="Static"):
    path = tmp_path / "run.toml"
    path.write_text(CONFIG.format(architecture=architecture, options=options, weighting=weighting,
                                  checkpoint=tmp_path / "run.pt"))
    return path


def test_a_config_trains_and_reports_test_metrics(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sbmm.train", str(write(tmp_path))], capture_output=True,
                            text=True, timeout=300, env={"TQDM_DISABLE": "1", **__import__("os").environ})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("validation loss") == 8
    metrics = json.loads(result.stdout[result.stdout.index("{"):])["test"]
    run = load_run(write(tmp_path))
    for name in ("y1", "y2"):
        label_std = float(run.test.labels[name].std())
        assert metrics[name]["rmse"] < 0.5 * label_std  # it learned: far below predicting the mean
    assert (tmp_path / "run.pt").exists()


def test_config_builds_the_declared_model_and_strategy(tmp_path):
    run = load_run(write(tmp_path, "MMoE", "{ n_experts = 3, expert = [16] }", "DWA"))
    assert type(run.model).__name__ == "MMoE" and len(run.model.experts.nets) == 3
    assert type(run.fit_options["weighting"]).__name__ == "DWA" and run.fit_options["epochs"] == 8


def test_the_seed_fixes_the_initial_weights_too(tmp_path):
    first, second = (load_run(write(tmp_path)).model.state_dict() for _ in range(2))
    assert all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize("change, message", [
    (("SharedBottom", "Transformer"), "architecture"),
    (('weighting = "Static"', 'weighting = "Magic"'), "weighting"),
    (("correlated_tasks", "imagenet"), "simulator"),
    (("lr = 0.003", "learning_rate = 0.003"), "unknown keys.*learning_rate"),
])
def test_bad_configs_raise_naming_the_problem(tmp_path, change, message):
    path = write(tmp_path)
    path.write_text(path.read_text().replace(*change))
    with pytest.raises(ValueError, match=message):
        load_run(path)
