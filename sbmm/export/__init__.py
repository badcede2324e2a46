"""From notebook to serving: a trained model, with its fusion, as a TorchScript or ONNX
file that a serving system runs without sbmm.

    sbmm.export(model, "ranker.onnx")                       # ONNX, opset OPSET
    sbmm.export(model, "ranker.pt", format="torchscript",
                fusion=Fusion(UTILITY.weights, terms="joint"))  # + the fused score
    scorer = sbmm.export.load("ranker.onnx")                # ONNX Runtime
    scorer(requests.batch.features)                         # {output: (B,) array}

    python -m sbmm.export RUN.pt --config RUN.toml --format onnx --out ranker.onnx

What leaves Python is `Served`: the model in evaluation mode, followed by what a ranking
service reads. Its inputs and outputs are named, and the batch dimension is dynamic:

    inputs   one per feature, in declaration order, named after it:
             Dense (B,) float32 when its dim is 1, else (B, dim);
             Categorical (B,) int64; MultiCategorical (B, L) int64 padded with -1,
             L dynamic too
    outputs  <objective>        the mean of its prediction (`Kind.mean`): a
                                probability for a binary objective, a value for a
                                regression, E[T] for a lognormal duration; (B,) or
                                (B, dim)
             joint_<objective>  for an objective given another, its entire-space
                                mean, as `sbmm.predict_joint` gives it: p(click) ·
                                p(like | click), p(click) · E[play time | click]
             score              with a `Fusion`, the fused score, (B,)

The checks before export name what cannot leave: something other than an sbmm model
(a weighting strategy, whose place is the training loss; `fit_replicas`' result, of
which one model is exported at a time), a fusion that is not a `Fusion` or names an
objective the model lacks, and an output name taken twice. A model in training mode is
exported in evaluation mode, as `sbmm.predict` predicts (dropout off, batch norm on its
running statistics); the model itself is left as it was, since a copy is exported.

Out of vocabulary. In eager PyTorch the input layer refuses an id outside its
vocabulary with a ValueError; that check is Python control flow, which a graph does not
keep. The graph keeps the refusal all the same: every id outside [0, vocab_size) (a
MultiCategorical's -1 padding apart) is sent to a row past its table, so ONNX Runtime
fails the request ("indices element out of data bounds") and TorchScript raises a
RuntimeError ("index out of range"). Without that, ONNX's Gather would read a negative
id from the table's end, and a MultiCategorical would read any negative id as padding.
A value never seen in training is for the feature lookup to map to the encoder's
out-of-vocabulary id 0 (`sbmm.TableEncoder`) before the request reaches the graph.

ONNX goes through `torch.onnx.export(dynamo=True)` (which needs onnxscript): the older
TorchScript-based exporter cannot write an EmbeddingBag with a padding row. Export
swaps each EmbeddingBag for `PooledEmbedding`, the same pooling as a gather and a
masked mean, which ONNX runs as a few operators instead of a loop over the rows.
onnx, onnxscript and onnxruntime are imported on first use, not by `import sbmm`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import sys
import types
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .. import kinds
from ..conditional import joint_prediction
from ..inputs import Categorical, Dense, Feature, InputLayer, MultiCategorical
from ..models.base import MultiTaskModel
from ..validation import is_number
from ..weighting import Weighting

__all__ = [
    "FORMATS",
    "FORMS",
    "OPSET",
    "TERMS",
    "Exported",
    "Fusion",
    "PooledEmbedding",
    "Served",
    "export",
    "load",
]

FORMATS = ("onnx", "torchscript")
OPSET = 18  # the ONNX operator set the files declare (ONNX Runtime ≥ 1.14 runs it)
FORMS = ("weighted_sum", "product")  # the fusion forms a graph computes row by row
TERMS = ("heads", "joint")  # what a fusion adds up: the heads, or the joint terms
SCORE = "score"  # the fused score's output name
JOINT = "joint_"  # the prefix of a joint prediction's output name
# Kinds whose mean is positive by construction, so that `product` may take its log.
POSITIVE = (kinds.Binary, kinds.LogNormal)


@dataclass(frozen=True)
class Fusion:
    """A fusion form of `sbmm.fusion` and its weights, which the graph computes as its
    `score` output, one number per candidate.

    weights: {objective: weight}, finite numbers; an objective not named weighs 0.
    form:    "weighted_sum": Σ_o w_o · x_o (`sbmm.fusion.weighted_sum`); or
             "product": Σ_o w_o · log x_o, the logarithm of Π_o x_o^w_o, which orders
             as the product does (`sbmm.fusion.product`); only objectives whose
             prediction is positive by construction (binary, lognormal) may be in it.
    terms:   "heads": x_o is objective o's output as its head predicts it; "joint":
             its entire-space term, `joint_<o>` for an objective given another, its
             own prediction otherwise (`sbmm.fusion.joint`). The expected utility is
             `Fusion(UTILITY.weights, terms="joint")`.

    Rank fusion is not a form here: it reads each objective's order within a request,
    which a graph that scores rows does not see; a serving system applies it to the
    outputs. A bad form, terms or weight is a ValueError naming it.
    """

    weights: Mapping[str, float]
    form: str = "weighted_sum"
    terms: str = "heads"

    def __post_init__(self) -> None:
        if self.form not in FORMS:
            raise ValueError(
                f"Fusion form must be one of {FORMS}, got {self.form!r} (rank fusion "
                "needs a whole request's order: apply it to the exported outputs)"
            )
        if self.terms not in TERMS:
            raise ValueError(f"Fusion terms must be one of {TERMS}, got {self.terms!r}")
        if not isinstance(self.weights, Mapping) or not self.weights:
            raise ValueError(
                f"Fusion weights must be a non-empty {{objective: weight}} mapping, "
                f"got {self.weights!r}"
            )
        for name, w in self.weights.items():
            if not (isinstance(name, str) and is_number(w)):
                raise ValueError(
                    f"Fusion weight of {name!r} must be a finite number, got {w!r}"
                )
        object.__setattr__(
            self, "weights", {o: float(w) for o, w in self.weights.items()}
        )

    def as_dict(self) -> dict:
        """The fusion as plain data, as the exported file records it."""
        return {"weights": dict(self.weights), "form": self.form, "terms": self.terms}


class PooledEmbedding(nn.Module):
    """An `nn.EmbeddingBag` with a padding row, in operators every exporter writes as
    such: (B, L) ids → gather (B, L, dim) → the mean (or sum) over the ids that are not
    padding → (B, dim); a row of padding alone pools to 0, as the bag's does. It reads
    the bag's own weight."""

    def __init__(self, bag: nn.EmbeddingBag):
        super().__init__()
        self.weight = bag.weight  # (vocab_size + 1, dim), the last row padding
        self.padding_idx = bag.padding_idx
        self.mode = bag.mode

    def forward(self, ids: Tensor) -> Tensor:
        kept = (ids != self.padding_idx).unsqueeze(-1)  # (B, L, 1), True for an id
        kept = kept.to(self.weight.dtype)
        total = (nn.functional.embedding(ids, self.weight) * kept).sum(1)  # (B, dim)
        if self.mode == "sum":
            return total
        return total / kept.sum(1).clamp_min(1.0)  # (B, dim)


def features_of(model: nn.Module) -> tuple[Feature, ...]:
    """The feature declarations of `model`'s input layers, in the order of first
    appearance (a model with several input layers, SingleTask's or STEM's, reads each
    feature once as one input)."""
    found: dict[str, Feature] = {}
    for layer in model.modules():
        if isinstance(layer, InputLayer):
            for f in layer.features:
                found.setdefault(f.name, f)
    return tuple(found.values())


def _check_model(model: object) -> MultiTaskModel:
    """`model`, once it is an sbmm model; a TypeError naming what it is otherwise."""
    if isinstance(model, MultiTaskModel):
        return model
    if isinstance(model, Weighting):
        raise TypeError(
            f"export takes a trained model, got the weighting strategy "
            f"{type(model).__name__}: a strategy weighs the losses in training and has "
            "no place at inference"
        )
    hint = ""
    if hasattr(model, "models"):
        hint = " (from fit_replicas? export one of its .models)"
    elif hasattr(model, "_orig_mod"):
        hint = " (a torch.compile wrapper? export its ._orig_mod)"
    raise TypeError(
        f"export takes an sbmm MultiTaskModel, got {type(model).__name__}{hint}"
    )


def _check_fusion(fusion: object, model: MultiTaskModel) -> Fusion | None:
    """`fusion` once it fits `model`: a ValueError or TypeError naming the problem."""
    if fusion is None:
        return None
    if isinstance(fusion, Weighting):
        raise TypeError(
            f"fusion must be a Fusion, got the weighting strategy "
            f"{type(fusion).__name__}: a strategy weighs the losses in training and "
            "has no place at inference; fusion weights rank the candidates"
        )
    if not isinstance(fusion, Fusion):
        raise TypeError(
            f"fusion must be an sbmm.export.Fusion, got {type(fusion).__name__}"
        )
    objectives = {o.name: o for o in model.objectives}
    unknown = [o for o in fusion.weights if o not in objectives]
    if unknown:
        raise ValueError(
            f"Fusion weights name {unknown}, which the model does not predict; its "
            f"objectives: {list(objectives)}"
        )
    for name, w in fusion.weights.items():
        o = objectives[name]
        if o.dim != 1:
            raise ValueError(
                f"Fusion: objective {name!r} predicts {o.dim} values per candidate; a "
                "fused score adds one number per objective"
            )
        if fusion.form == "product" and w != 0:
            if not isinstance(kinds.get(o.kind), POSITIVE):
                raise ValueError(
                    f"Fusion product: objective {name!r} is {o.kind!r}, whose "
                    "prediction may be 0 or below, where its logarithm is undefined; "
                    "fuse it by weighted_sum, or declare a positive kind (lognormal)"
                )
    return fusion


def _refuse_out_of_vocabulary(f: Feature, ids: Tensor) -> Tensor:
    """`ids` with every id outside its vocabulary (MultiCategorical: but -1) moved to
    a row past the table, where a graph's lookup fails, as eager's check does."""
    if isinstance(f, Categorical):
        bad = (ids < 0) | (ids >= f.vocab_size)
        return torch.where(bad, torch.full_like(ids, f.vocab_size), ids)
    # the bag's table has vocab_size + 1 rows, the last for padding
    bad = (ids < -1) | (ids >= f.vocab_size)
    return torch.where(bad, torch.full_like(ids, f.vocab_size + 1), ids)


class Served(nn.Module):
    """What leaves Python: a copy of `model` on the CPU in evaluation mode (each
    EmbeddingBag as a `PooledEmbedding`), then its outputs' means, the joint
    predictions of its conditional objectives, and, with `fusion`, the fused score.

    forward(*features) → tuple of outputs, in the order of `output_names`, from one
    tensor per feature in the order of `features` (the model's declarations). Called
    in Python, it is the eager baseline of the exported graph, and it checks its
    inputs as the model does."""

    def __init__(self, model: MultiTaskModel, fusion: Fusion | None = None):
        super().__init__()
        model = _check_model(model)
        self.fusion = _check_fusion(fusion, model)
        model = copy.deepcopy(model).cpu().eval()
        for layer in model.modules():
            if isinstance(layer, InputLayer):
                for name, table in layer.embeddings.items():
                    if isinstance(table, nn.EmbeddingBag):
                        layer.embeddings[name] = PooledEmbedding(table)
        self.model = model
        self.features = features_of(model)
        self.conditional = tuple(
            o for o in model.objectives if o.given is not None and o.imputes is None
        )
        self.output_names = (
            *(o.name for o in model.objectives),
            *(JOINT + o.name for o in self.conditional),
            *((SCORE,) if self.fusion is not None else ()),
        )
        names = [f.name for f in self.features] + list(self.output_names)
        taken = sorted({n for n in names if names.count(n) > 1})
        if taken:
            raise ValueError(
                f"the graph's input and output names must differ, but {taken} name "
                "more than one (a feature and an objective, or an objective named "
                f"'{SCORE}' or '{JOINT}...'): rename them"
            )

    def forward(self, *features: Tensor) -> tuple[Tensor, ...]:
        if len(features) != len(self.features):
            raise ValueError(
                f"Served takes {len(self.features)} feature tensors, "
                f"{[f.name for f in self.features]}, got {len(features)}"
            )
        exporting = torch.jit.is_tracing() or torch.compiler.is_compiling()
        x = {
            f.name: _refuse_out_of_vocabulary(f, v)
            if exporting and not isinstance(f, Dense)
            else v
            for f, v in zip(self.features, features)
        }
        raw = self.model(x)  # {objective: (B,) logit or (B,)/(B, width) value}
        out = {
            o.name: kinds.get(o.kind).mean(raw[o.name]) for o in self.model.objectives
        }
        for o in self.conditional:  # p(chain) · E[o | chain], entire-space
            joint = joint_prediction(o, raw, self.model.tower_specs)
            out[JOINT + o.name] = kinds.get(o.kind).mean(joint)
        if self.fusion is not None:
            out[SCORE] = self.fused(out)
        return tuple(out[name] for name in self.output_names)

    def fused(self, out: Mapping[str, Tensor]) -> Tensor:
        """(B,) the fusion's score from the outputs `out` {name: (B,)}."""
        f = self.fusion
        score = None
        for o, w in f.weights.items():
            if w == 0:
                continue
            x = out.get(JOINT + o, out[o]) if f.terms == "joint" else out[o]  # (B,)
            term = w * (torch.log(x) if f.form == "product" else x)
            score = term if score is None else score + term
        if score is None:  # every weight 0: every candidate scores 0
            score = torch.zeros_like(out[self.model.objectives[0].name])
        return score

    def example(self, rows: int = 3, length: int = 3) -> tuple[Tensor, ...]:
        """One tensor per feature, `rows` rows, a MultiCategorical `length` ids wide
        with one padded: what the export traces. More than one row and id, so that no
        dimension is read as fixed at 1."""
        g = torch.Generator().manual_seed(0)
        out = []
        for f in self.features:
            if isinstance(f, Dense):
                shape = (rows,) if f.dim == 1 else (rows, f.dim)
                out.append(torch.randn(shape, generator=g))
            elif isinstance(f, Categorical):
                out.append(torch.randint(0, f.vocab_size, (rows,), generator=g))
            else:
                ids = torch.randint(0, f.vocab_size, (rows, length), generator=g)
                out.append(ids.index_fill(1, torch.tensor([length - 1]), -1))
        return tuple(out)

    def signature(self, format: str, opset: int | None) -> dict:
        """The file's inputs, outputs and fusion, as plain data (stored in it)."""
        inputs = []
        for f in self.features:
            if isinstance(f, Dense):
                shape = ["batch"] if f.dim == 1 else ["batch", f.dim]
                inputs.append({"name": f.name, "dtype": "float32", "shape": shape})
            else:
                shape = ["batch"] if isinstance(f, Categorical) else ["batch", "length"]
                inputs.append({"name": f.name, "dtype": "int64", "shape": shape})
        return {
            "format": format,
            "opset": opset,
            "inputs": inputs,
            "outputs": list(self.output_names),
            "fusion": None if self.fusion is None else self.fusion.as_dict(),
            "torch": torch.__version__,
        }


@contextlib.contextmanager
def _quiet():
    """Silence what the exporters print on every export (their progress, a trace's
    warning that the eager id check is not kept, torchvision's absence), so that a
    notebook's output shows what the reader needs; errors still raise."""
    loggers = [
        logging.getLogger(n) for n in ("torch.onnx", "torch.export", "onnxscript")
    ]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


def export(
    model: MultiTaskModel,
    path: str | Path,
    format: str = "onnx",
    *,
    fusion: Fusion | None = None,
    opset: int = OPSET,
) -> Path:
    """Write `model` (and, with `fusion`, its fused score) to `path` as `format`,
    "onnx" (operator set `opset`) or "torchscript"; returns the path.

    The file holds `Served(model, fusion)`: named inputs, one per feature, and named
    outputs (see the module's docstring), with a dynamic batch; its signature (inputs,
    outputs, fusion) is stored in it, where `load` reads it. Nothing is checked
    against data: `model` should be the trained one. Raises TypeError for something
    that is not an sbmm model or fusion, and ValueError for an unknown format, a
    fusion that does not fit the model, or a path that is a folder."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file path in it")
    served = Served(model, fusion)
    example = served.example()
    names = [f.name for f in served.features]
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), _quiet():
        if format == "torchscript":
            signature = served.signature(format, None)
            graph = torch.jit.trace(served, example, check_trace=False)
            extra = {"sbmm.json": json.dumps(signature)}
            torch.jit.save(graph, str(path), _extra_files=extra)
            return path
        batch = torch.export.Dim("batch")
        shapes = [
            {0: batch, 1: torch.export.Dim(f"{f.name}_length")}
            if isinstance(f, MultiCategorical)
            else {0: batch}
            for f in served.features
        ]
        program = torch.onnx.export(
            served,
            example,
            dynamo=True,
            input_names=names,
            output_names=list(served.output_names),
            dynamic_shapes=(tuple(shapes),),
            opset_version=opset,
            verbose=False,
        )
        program.model.metadata_props["sbmm"] = json.dumps(
            served.signature(format, opset)
        )
        program.save(str(path))
    return path


class Exported:
    """An exported file, ready to score with its own runtime: ONNX Runtime for an ONNX
    file, TorchScript for a TorchScript one; no sbmm model is built.

    signature: the file's inputs, outputs and fusion, as `export` stored them.
    format:    "onnx" or "torchscript".

    exported(features) → {output: (B,) or (B, dim) NumPy array}, from {feature: array
    or tensor} (ids of any integer dtype, dense values of any float dtype);
    `prepare` and `run` are its two halves (conversion, then the runtime alone), for
    timing the runtime."""

    def __init__(self, path: str | Path, threads: int = 1):
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"no exported model at {path}")
        self.format = "torchscript" if zipfile.is_zipfile(path) else "onnx"
        try:
            self.signature = self._open(path, threads)
        except Exception as error:  # each runtime fails on a bad file in its own way
            raise ValueError(
                f"{path} could not be loaded by {self.format} ({type(error).__name__}:"
                f" {error})"
            ) from error
        if self.signature is None:
            raise ValueError(f"{path} was not written by sbmm.export (no signature)")
        self.outputs = tuple(self.signature["outputs"])

    def _open(self, path: Path, threads: int) -> dict | None:
        """Load the file into its runtime; returns its stored signature, if any."""
        if self.format == "torchscript":  # a zip archive
            extra = {"sbmm.json": ""}
            self.module = torch.jit.load(str(path), _extra_files=extra)
            return json.loads(extra["sbmm.json"] or "null")
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 4  # fatal only: a failed run raises its error
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        meta = self.session.get_modelmeta().custom_metadata_map
        return json.loads(meta["sbmm"]) if "sbmm" in meta else None

    def prepare(self, features: Mapping[str, object]):
        """The runtime's inputs from `features` {name: array or tensor}: a ValueError or
        TypeError naming a missing feature, one of the wrong rank, or a float id."""
        arrays = []
        rows = set()
        for spec in self.signature["inputs"]:
            name = spec["name"]
            if name not in features:
                raise ValueError(
                    f"feature {name!r} is missing (the model reads "
                    f"{[s['name'] for s in self.signature['inputs']]})"
                )
            value = features[name]
            if isinstance(value, Tensor):
                value = value.detach().cpu().numpy()
            value = np.asarray(value)
            if spec["dtype"] == "int64" and value.dtype.kind not in "iu":
                raise TypeError(
                    f"id feature {name!r} must hold integers, got {value.dtype}"
                )
            if value.ndim != len(spec["shape"]):
                raise ValueError(
                    f"feature {name!r} must have shape {tuple(spec['shape'])}, got "
                    f"{value.shape}"
                )
            rows.add(len(value))
            arrays.append(np.ascontiguousarray(value, dtype=spec["dtype"]))
        if len(rows) > 1:
            raise ValueError(f"the features have different numbers of rows: {rows}")
        if self.format == "torchscript":
            return tuple(torch.from_numpy(a) for a in arrays)
        return {s["name"]: a for s, a in zip(self.signature["inputs"], arrays)}

    def run(self, prepared) -> list[np.ndarray]:
        """The runtime's outputs, in the order of `outputs`, from `prepare`'s
        inputs."""
        if self.format == "torchscript":
            with torch.inference_mode():
                return [t.numpy() for t in self.module(*prepared)]
        return self.session.run(None, prepared)

    def __call__(self, features: Mapping[str, object]) -> dict[str, np.ndarray]:
        return dict(zip(self.outputs, self.run(self.prepare(features))))


def load(path: str | Path, threads: int = 1) -> Exported:
    """The file `export` wrote at `path`, ready to score on the CPU with `threads`
    threads (ONNX Runtime's; TorchScript uses PyTorch's). A ValueError names a path
    with no file, or a file `export` did not write."""
    return Exported(path, threads)


class _CallableModule(types.ModuleType):
    """`sbmm.export` is this module and, called, `export`: `sbmm.export(model, path)`
    and `python -m sbmm.export` both work."""

    def __call__(self, *args, **kwargs) -> Path:
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
