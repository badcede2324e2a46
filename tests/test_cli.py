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
from sbmm.data import registry
from sbmm.data.census import FILES as CENSUS_FILES
from sbmm.data.encoding import Schema, split_frame
from sbmm.data.registry import DATASETS
from sbmm.train.__main__ import main
from sbmm.train.config import architectures, load_run, strategies
from test_census import uci_line
from test_census import write as write_gz
from test_logs import write_aliccp, write_aliexpress, write_kuairand

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
            "architecture must be one of .*MMoE, OMoE, PLE, SharedBottom, SingleTask",
        ),
        (
            ('weighting = "Static"', 'weighting = "Magic"'),
            "weighting must be one of .*PCGrad, .*Static",
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
            r"\[\[towers\]\] 'a': objective 'y1': .*kind 'regresion'",
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


TABLE_CONFIG = """
[data]
{source}
seed = 0
categorical = ["city"]
dense = ["price"]
multi_valued = ["tags"]
labels = ["click"]
encoder = {{ dim = 4, min_count = 1 }}

[model]
architecture = "SharedBottom"
options = {{ bottom = [8] }}

[[towers]]
name = "click"
objectives = [{{ name = "click" }}]

[train]
epochs = 2
early_stopping = {{ patience = 1, objective = "click", metric = "auc" }}
"""


CENSUS_CONFIG = """
[data]
dataset = "census"
encoder = { dim = 4 }

[model]
architecture = "MMoE"

[[towers]]
name = "income"
objectives = [{ name = "income" }]

[[towers]]
name = "never_married"
objectives = [{ name = "never_married" }]
"""


def table(n: int, seed: int = 0):
    import pandas as pd

    g = torch.Generator().manual_seed(seed)
    price = torch.rand(n, generator=g)
    return pd.DataFrame(
        {
            "city": [f"c{int(i)}" for i in torch.randint(0, 5, (n,), generator=g)],
            "price": price.numpy(),
            "tags": ["a|b" if p > 0.5 else "" for p in price],  # "" is no tag
            "click": (price > 0.3).float().numpy(),
        }
    )


def test_a_csv_file_is_split_encoded_and_declared(tmp_path):
    table(200).to_csv(tmp_path / "log.csv", index=False)
    path = tmp_path / "run.toml"
    path.write_text(TABLE_CONFIG.format(source='file = "log.csv"'))
    run = load_run(path)
    assert (len(run.train), len(run.valid), len(run.test)) == (160, 20, 20)
    names = [f.name for f in run.model.inputs.features]
    assert names == ["city", "price", "tags"]
    assert run.model.inputs.features[0].vocab_size == 6  # five cities and the OOV id
    assert run.train.features["tags"].shape[1] == 2  # "a|b" split on the separator
    assert run.fit_options["early_stopping"].metric == "auc"
    history = sbmm.fit(run.model, run.train, run.valid, progress=False,
                       **run.fit_options)  # fmt: skip
    assert history.epochs >= 1


def test_parquet_files_per_split_and_the_census_dataset(tmp_path):
    for split, seed in (("train", 0), ("valid", 1), ("test", 2)):
        table(50, seed).to_parquet(tmp_path / f"{split}.parquet")
    source = 'train = "train.parquet"\nvalid = "valid.parquet"\ntest = "test.parquet"'
    path = tmp_path / "run.toml"
    path.write_text(TABLE_CONFIG.format(source=source))
    run = load_run(path)
    assert (len(run.train), len(run.valid), len(run.test)) == (50, 50, 50)
    path.write_text(CENSUS_CONFIG)
    run = load_run(path)
    assert len(run.model.inputs.features) == 39
    assert set(run.train.labels) == {"income", "never_married"}


@pytest.mark.parametrize(
    "source, message",
    [
        ('file = "log.csv"\nsimulator = "feed"', "exactly one source"),
        ('file = "log.txt"', "log.txt: a table file must end in .csv or .parquet"),
        ('file = "nothing.csv"', "nothing.csv: no such file"),
        ('dataset = "imagenet"', "no data set is named 'imagenet'; known: .*census"),
        ('train = "log.csv"', r"names a train file but not \['valid', 'test'\]"),
    ],
)
def test_bad_table_sources_are_named(tmp_path, source, message):
    table(20).to_csv(tmp_path / "log.csv", index=False)
    path = tmp_path / "run.toml"
    path.write_text(TABLE_CONFIG.format(source=source))
    with pytest.raises(ValueError, match=message):
        load_run(path)


# Data sets by name: each registered loader is one [data] dataset = "..." away.

DATASET_CONFIG = """
[data]
dataset = "{name}"
{extra}
encoder = {{ dim = 4 }}

[model]
options = {{ bottom = [8] }}

[[towers]]
name = "t"
objectives = [{{ name = "{label}" }}]
"""


def write_census(folder):
    folder.mkdir()
    lines = [
        uci_line(20 + i, "Divorced", "50000+." if i % 3 else "- 50000.")
        for i in range(10)
    ]
    write_gz(folder / CENSUS_FILES["test"], lines)


def write_both_aliccp(folder):
    folder.mkdir()
    for split in ("train", "test"):
        write_aliccp(folder, split)


def write_two_countries(folder):
    folder.mkdir()
    for country in ("NL", "ES"):
        write_aliexpress(folder, country, 5)


@pytest.mark.parametrize(
    "name, write_files, extra, label, sizes",
    [
        ("census", write_census, 'path = "data"', "income", (8, 1, 1)),
        ("aliccp", write_both_aliccp, 'path = "data"', "click", (3, 2, 1)),
        (
            "kuairand",
            write_kuairand,
            'path = "data/KuaiRand-Pure"\nvariant = "pure"\n'
            "fractions = [0.5, 0.25, 0.25]",
            "is_click",
            (2, 1, 1),
        ),
        (
            "aliexpress",
            write_two_countries,
            'path = "data"\ncountries = ["NL", "ES"]\nnrows = 4',
            "conversion",
            (6, 1, 1),
        ),
    ],
)
def test_a_config_names_each_data_set(tmp_path, name, write_files, extra, label, sizes):
    write_files(tmp_path / "data")
    path = tmp_path / "run.toml"
    path.write_text(DATASET_CONFIG.format(name=name, extra=extra, label=label))
    run = load_run(path)
    assert (len(run.train), len(run.valid), len(run.test)) == sizes
    assert label in run.train.labels and run.model.inputs.features


def test_an_unknown_data_set_lists_the_known_ones_and_options_are_its_own(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(DATASET_CONFIG.format(name="movielens", extra="", label="click"))
    with pytest.raises(ValueError, match="no data set is named 'movielens'") as error:
        load_run(path)
    assert all(name in str(error.value) for name in DATASETS)
    assert {"census", "aliccp", "kuairand", "aliexpress"} <= set(DATASETS)
    path.write_text(DATASET_CONFIG.format(name="kuairand", extra="", label="is_click"))
    with pytest.raises(ValueError, match="dataset 'kuairand' needs path"):
        load_run(path)
    extra = 'path = "x"\nvariant = "pure"'
    path.write_text(DATASET_CONFIG.format(name="census", extra=extra, label="income"))
    with pytest.raises(ValueError, match=r"unknown keys \['variant'\]"):
        load_run(path)


def test_a_new_data_set_is_one_registered_function(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "DATASETS", dict(registry.DATASETS))

    @registry.register("tiny")
    def tiny(path, fractions, seed, *, rows: int = 20):
        frame = table(rows)[["city", "price", "click"]]
        schema = Schema(categorical=["city"], dense=["price"], labels=["click"])
        return registry.Splits(*split_frame(frame, fractions, seed), schema)

    path = tmp_path / "run.toml"
    extra = 'path = "."\nrows = 40'
    path.write_text(DATASET_CONFIG.format(name="tiny", extra=extra, label="click"))
    run = load_run(path)
    assert (len(run.train), len(run.valid), len(run.test)) == (32, 4, 4)


@pytest.mark.parametrize(
    "change, message",
    [
        (('name = "a"\nhidden = [16]', 'name = "a"\nhidden = 4'),
         r"\[\[towers\]\] 'a' hidden must be a list of integers, got 4"),
        (("epochs = 8", 'epochs = "8"'), r"epochs must be an integer, got '8'"),
        (("batch_size = 64", "batch_size = 64.0"), r"batch_size must be an integer"),
        (("lr = 0.003", 'lr = "0.003"'), r"\[train\] lr must be a number, got '0.003'"),
        (("n = 4000", 'n = "4000"'), r"\[data\] n must be an integer, got '4000'"),
        (("knobs = {", "fractions = [0.5, 0.5]\nknobs = {"),
         r"\[data\] fractions must be three numbers, got \[0.5, 0.5\]"),
        (("seed = 0\nweighting", 'seed = 0\nresume = "yes"\nweighting'),
         r"\[train\] resume must be true or false, got 'yes'"),
        (('checkpoint = "run.pt"', "checkpoint = 3"),
         r"\[train\] checkpoint must be a string, got 3"),
        (("options = { bottom = [32, 16] }", "options = [32]"),
         r"\[model\] options must be a table"),
    ],
)  # fmt: skip
def test_values_of_the_wrong_type_are_refused_naming_the_key(tmp_path, change, message):
    path = write(tmp_path)
    text = path.read_text()
    assert change[0] in text  # the change applies
    path.write_text(text.replace(*change, 1))
    with pytest.raises(
        (TypeError, ValueError), match=f"^{re.escape(str(path))}: .*{message}"
    ):
        load_run(path)


def test_an_unwritable_checkpoint_path_stops_the_command_before_any_data(
    tmp_path, capsys
):
    path = write(tmp_path)
    path.write_text(path.read_text().replace('"run.pt"', '"run.toml/run.pt"'))
    with pytest.raises(SystemExit) as exited:
        main([str(path)])
    assert exited.value.code == 2
    assert f"{tmp_path / 'run.toml'} is a file, not a folder" in capsys.readouterr().err
