"""`sbmm.export`: a trained model and its fusion leave Python as TorchScript or ONNX;
exported and eager outputs agree for every architecture, ONNX Runtime runs the file,
the fused score is `sbmm.fusion`'s, bad input is refused by name, and the command line
exports a checkpoint that `python -m sbmm.train` wrote."""

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import torch

import sbmm
from sbmm import fusion
from sbmm.export import OPSET, Fusion, Served, load
from sbmm.export.__main__ import main as export_main
from sbmm.train.__main__ import main as train_main
from sbmm.train.config import architectures, load_run

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURES = architectures()  # {name: class}: every MultiTaskModel subclass
TOLERANCE = 1e-5


def features():
    return [
        sbmm.Dense("x", 3),
        sbmm.Dense("price"),
        sbmm.Categorical("item", 10, dim=4),
        sbmm.MultiCategorical("tags", 7, dim=3),
    ]


def feed_towers():
    """The feed's five objectives, named as `sbmm.fusion` names them; the two times
    are lognormal, so that every prediction is positive."""
    return [
        sbmm.Tower(
            "scene1",
            [
                sbmm.Objective("stay"),
                sbmm.Objective("stay_time", "lognormal", given="stay"),
                sbmm.Objective("click"),
            ],
            hidden=(8,),
        ),
        sbmm.Tower(
            "scene2",
            [
                sbmm.Objective("play_time", "lognormal", given="click"),
                sbmm.Objective("like", given="click", space="entire"),
            ],
            hidden=(8,),
        ),
    ]


def towers():
    """The feed's towers and a 3-wide regression: every kind and shape of output."""
    vector = sbmm.Objective("v", "regression", dim=3)
    return feed_towers() + [sbmm.Tower("vec", [vector], hidden=(4,))]


def request(n, length=4, seed=1):
    """{feature: tensor} of `n` candidates as a request brings them: ids as the feed
    stores them (int32, int16), tags padded with -1 (the last row all padding)."""
    g = torch.Generator().manual_seed(seed)
    tags = torch.randint(-1, 7, (n, length), generator=g)
    tags[:, 0] = torch.randint(0, 7, (n,), generator=g)
    if n > 1:
        tags[-1] = -1
    return {
        "x": torch.randn(n, 3, generator=g),
        "price": torch.randn(n, generator=g),
        "item": torch.randint(0, 10, (n,), generator=g, dtype=torch.int32),
        "tags": tags.to(torch.int16),
    }


def eager(served, values):
    """`served`'s outputs in Python, {name: (B,) or (B, dim) array}."""
    with torch.inference_mode():
        out = served(*(values[f.name] for f in served.features))
    return {name: t.numpy() for name, t in zip(served.output_names, out)}


JOINT_UTILITY = Fusion(fusion.UTILITY.weights, terms="joint")  # the expected utility


def build(architecture):
    """A model of `architecture` with dropout and batch norm, in training mode, as
    `fit` may leave it: export must serve it in evaluation mode."""
    torch.manual_seed(0)
    options = {"dropout": 0.3, "batch_norm": True}
    return ARCHITECTURES[architecture](features(), towers(), **options).train()


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_exported_outputs_equal_eager_ones(architecture, format, tmp_path):
    model = build(architecture)
    path = sbmm.export(model, tmp_path / f"m.{format}", format, fusion=JOINT_UTILITY)
    assert model.training  # exported in evaluation mode; the model left as it was
    scorer, served = load(path), Served(model, JOINT_UTILITY)
    assert scorer.outputs == served.output_names
    for n, length in ((1, 2), (7, 5), (64, 3)):  # batch 1; wider and narrower tags
        values = request(n, length, seed=n)
        got, expected = scorer(values), eager(served, values)
        for name in served.output_names:
            assert got[name].shape == expected[name].shape, name
            np.testing.assert_allclose(
                got[name], expected[name], rtol=TOLERANCE, atol=TOLERANCE, err_msg=name
            )


def test_the_outputs_are_sbmm_s_predictions_in_evaluation_mode():
    model = build("SharedBottom")
    served, values = Served(model), request(16)
    data = sbmm.Batch(values, {})
    out = eager(served, values)
    predictions = sbmm.predict(model, data)  # raw: logits, (μ, log σ), values
    joint = sbmm.predict_joint(model, data)
    assert served.output_names == (
        *(o.name for o in model.objectives),
        "joint_stay_time",
        "joint_play_time",
        "joint_like",
    )
    for o in model.objectives:
        mean = sbmm.kinds.get(o.kind).mean(predictions[o.name]).numpy()
        np.testing.assert_allclose(out[o.name], mean, rtol=1e-6)
    for name in ("stay_time", "play_time", "like"):
        np.testing.assert_allclose(out[f"joint_{name}"], joint[name], rtol=1e-6)
    np.testing.assert_allclose(out["joint_like"], out["click"] * out["like"], 1e-6)


@pytest.mark.parametrize(
    "chosen",
    [
        Fusion({"click": 1.0, "like": 2.0, "play_time": 0.05, "stay": -0.5}),
        Fusion({"click": 1.3, "like": 0.4, "play_time": 1.0}, form="product"),
        JOINT_UTILITY,
        Fusion({"click": 6.2, "like": 0.4, "play_time": 1.0}, terms="joint"),
        Fusion({"stay": 0.5, "like": 1.0, "stay_time": 1}, "product", "joint"),
    ],
)
def test_the_fused_score_is_sbmm_fusion_s(chosen):
    served = Served(build("MMoE"), chosen)
    out = eager(served, request(50))
    heads = {o: out[o][None].astype(np.float64) for o in fusion.INPUTS}  # (1, C)
    terms = fusion.joint(heads) if chosen.terms == "joint" else heads
    form = fusion.product if chosen.form == "product" else fusion.weighted_sum
    expected = form(terms, chosen.weights)  # (1, C)
    np.testing.assert_allclose(out["score"], expected[0], rtol=TOLERANCE)
    if chosen is JOINT_UTILITY:
        utility = fusion.UTILITY.expected(heads)[0]
        np.testing.assert_allclose(out["score"], utility, rtol=TOLERANCE)


def test_the_onnx_file_declares_its_opset_names_and_dynamic_batch(tmp_path):
    model = build("SharedBottom")
    path = sbmm.export(model, tmp_path / "m.onnx", fusion=JOINT_UTILITY)
    graph = onnx.load(path)
    onnx.checker.check_model(graph)
    assert {o.domain: o.version for o in graph.opset_import}[""] == OPSET
    inputs = {i.name: i.type.tensor_type for i in graph.graph.input}
    assert list(inputs) == ["x", "price", "item", "tags"]
    assert inputs["item"].elem_type == onnx.TensorProto.INT64
    assert inputs["x"].elem_type == onnx.TensorProto.FLOAT
    batch = {t.shape.dim[0].dim_param for t in inputs.values()}
    assert len(batch) == 1 and batch != {""}  # one symbolic batch, shared by all
    assert inputs["tags"].shape.dim[1].dim_param  # the tags' length is dynamic too
    assert [o.name for o in graph.graph.output] == [
        *("stay", "stay_time", "click", "play_time", "like", "v"),
        *("joint_stay_time", "joint_play_time", "joint_like", "score"),
    ]
    assert load(path).signature["fusion"] == JOINT_UTILITY.as_dict()


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
def test_an_id_outside_its_vocabulary_fails_the_request(format, tmp_path):
    """Eager refuses it by name; the graph fails the request instead of reading a row
    from the table's end (a negative id) or as padding (a multi-valued one)."""
    model = build("SharedBottom")
    scorer = load(sbmm.export(model, tmp_path / f"m.{format}", format))
    served, values = Served(model), request(5)
    bad_values = {
        "item": [10, -1, -2],  # vocabulary [0, 10)
        "tags": [7, -2],  # vocabulary [0, 7), -1 pads
    }
    for name, bad_ids in bad_values.items():
        for bad in bad_ids:
            broken = dict(values)
            broken[name] = values[name].clone()
            broken[name].view(-1)[0] = bad
            with pytest.raises(ValueError, match=repr(name)):
                eager(served, broken)
            with pytest.raises(Exception, match="out of (data bounds|range)"):
                scorer(broken)


def test_bad_input_is_refused_by_name(tmp_path):
    model = build("SharedBottom")
    with pytest.raises(TypeError, match="no place at inference"):
        sbmm.export(sbmm.Static(), tmp_path / "m.onnx")
    with pytest.raises(TypeError, match="no place at inference"):
        sbmm.export(model, tmp_path / "m.onnx", fusion=sbmm.Uncertainty())
    with pytest.raises(TypeError, match="export one of its .models"):
        sbmm.export(SimpleNamespace(models=[model]), tmp_path / "m.onnx")
    with pytest.raises(TypeError, match="must be an sbmm.export.Fusion"):
        sbmm.export(model, tmp_path / "m.onnx", fusion={"click": 1.0})
    with pytest.raises(ValueError, match="format must be one of"):
        sbmm.export(model, tmp_path / "m.onnx", format="tflite")
    with pytest.raises(ValueError, match="is a folder"):
        sbmm.export(model, tmp_path)
    with pytest.raises(ValueError, match=r"\['share'\], which the model does not"):
        Served(model, Fusion({"click": 1.0, "share": 2.0}))
    with pytest.raises(ValueError, match="rank fusion needs a whole request"):
        Fusion({"click": 1.0}, form="rank_fusion")
    with pytest.raises(ValueError, match="weight of 'like' must be a finite"):
        Fusion({"click": 1.0, "like": float("nan")})
    with pytest.raises(ValueError, match="'v' predicts 3 values"):
        Served(model, Fusion({"v": 1.0}))
    regression = sbmm.Tower("t", [sbmm.Objective("watch", "regression")])
    plain = sbmm.SharedBottom(features(), [regression])
    with pytest.raises(ValueError, match="product: objective 'watch' is 'regression'"):
        Served(plain, Fusion({"watch": 1.0}, form="product"))
    clash = sbmm.Tower("t", [sbmm.Objective("price", "regression")])
    with pytest.raises(ValueError, match=r"\['price'\] name more than one"):
        Served(sbmm.SharedBottom(features(), [clash]))
    assert not list(tmp_path.iterdir())  # nothing was written

    scorer = load(sbmm.export(model, tmp_path / "m.onnx"))
    values = request(4)
    with pytest.raises(ValueError, match="feature 'tags' is missing"):
        scorer({k: v for k, v in values.items() if k != "tags"})
    with pytest.raises(TypeError, match="id feature 'item' must hold integers"):
        scorer({**values, "item": values["item"].float()})
    with pytest.raises(ValueError, match=r"'tags' must have shape \('batch', 'len"):
        scorer({**values, "tags": values["tags"][:, 0]})
    with pytest.raises(ValueError, match="different numbers of rows"):
        scorer({**values, "price": values["price"][:2]})
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.onnx could not be loaded"):
        load(tmp_path / "junk.onnx")
    with pytest.raises(ValueError, match="no exported model at"):
        load(tmp_path / "none.onnx")


CONFIG = """
[data]
simulator = "feed"
n = 3000
seed = 0

[model]
architecture = "{architecture}"
options = {{ bottom = [16] }}

[[towers]]
name = "scene1"
hidden = [8]
objectives = [{{ name = "click" }}]

[[towers]]
name = "scene2"
hidden = [8]
objectives = [{{ name = "like", given = "click", space = "entire" }}]

[train]
epochs = 3
batch_size = 256
lr = 0.01
seed = 0
keep_best = true
checkpoint = "run.pt"
"""


@pytest.mark.filterwarnings("ignore:still improving")  # 3 epochs: a test's run
def test_the_command_line_exports_a_trained_checkpoint(tmp_path, capsys):
    config, checkpoint = tmp_path / "run.toml", tmp_path / "run.pt"
    config.write_text(CONFIG.format(architecture="SharedBottom"))
    train_main([str(config)])
    run, state = load_run(config), sbmm.load_checkpoint(checkpoint)  # the same model
    best, last = tmp_path / "best.pt", tmp_path / "last.onnx"
    result = subprocess.run(  # as a user runs it
        [sys.executable, "-m", "sbmm.export", str(checkpoint), "--config", str(config)]
        + ["--format", "torchscript", "--out", str(best)]
        + ["--weight", "click=1", "--weight", "like=30", "--terms", "joint"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "the best epoch's weights, torchscript" in result.stdout
    assert "outputs: click, like, joint_like, score" in result.stdout
    export_main(
        [str(checkpoint), "--config", str(config), "--out", str(last), "--last"]
    )
    assert "the last epoch's weights, onnx" in capsys.readouterr().out

    for path, weights in ((best, state["best_model"]), (last, state["model"])):
        run.model.load_state_dict(weights)
        scored = load(path)(run.test.features)
        joint = sbmm.predict_joint(run.model, run.test)
        for name in ("click", "like"):
            got = scored["joint_like" if name == "like" else name]
            np.testing.assert_allclose(got, joint[name], TOLERANCE, TOLERANCE)
    score = load(best)(run.test.features)["score"]
    run.model.load_state_dict(state["best_model"])
    joint = sbmm.predict_joint(run.model, run.test)
    expected = joint["click"] + 30 * joint["like"]
    np.testing.assert_allclose(score, expected, TOLERANCE, TOLERANCE)

    other = tmp_path / "other.toml"  # another architecture: the checkpoint is refused
    other.write_text(CONFIG.format(architecture="MMoE").replace("bottom", "expert"))
    out = tmp_path / "refused.onnx"
    argv = [str(checkpoint), "--config", str(other), "--out", str(out)]
    with pytest.raises(SystemExit) as stopped:
        export_main(argv)
    assert stopped.value.code == 2
    assert "does not fit this MMoE" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export_main([*argv[:3], "--out", str(out), "--weight", "click"])
    assert "OBJECTIVE=NUMBER" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export_main([*argv[:3], "--out", str(out), "--fusion", "product"])
    assert "need the fusion's weights" in capsys.readouterr().err
    assert not out.exists()
