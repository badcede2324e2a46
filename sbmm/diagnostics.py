"""Training diagnostics, run by `fit` through its `callbacks` argument
(each costs extra backward passes, so it measures every few steps).

`GradientNorm` records the size |∂L_o/∂θ| of one objective's gradient: what heavy-tailed
sample weights do to the optimiser's steps.

`GradientCosine` measures how much two objectives agree about the shared parameters: the
cosine between their loss gradients with respect to them,

    cos(g_a, g_b) = g_a · g_b / (|g_a| |g_b|),     g_o = ∂L_o / ∂θ_shared (flattened).

Near 1 the objectives push the shared parameters the same way (sharing helps both); near
0 they ask for unrelated changes; below 0 they conflict, and a step that helps one hurts
the other (the seesaw).

    cosine = GradientCosine(pairs=[("click", "like")], every=20)
    sbmm.fit(model, data.train, callbacks=[cosine])
    cosine.steps, cosine.cosines[("click", "like")]        # the steps measured, and a
                                                           # cosine per step

`dead_units`, after training, is the share of a model's ReLU units that never fire on a
batch: units that no longer learn, a sign of a learning rate too high for the layer.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

from .data.batch import Batch
from .train.evaluation import predict
from .weighting import flat_gradient

__all__ = ["GradientNorm", "GradientCosine", "dead_units"]


class GradientNorm:
    """A step callback (`sbmm.fit(..., callbacks=[...])`) recording the norm of one
    objective's loss gradient with respect to all of a model's parameters: |∂L_o/∂θ|.

    objective: the objective whose loss is differentiated, by name.
    every:     measure at steps 0, every, 2·every, ... (each measurement costs one extra
               backward pass).

    After training: `steps` lists the steps measured, `norms` the gradient norm at each.
    """

    def __init__(self, objective: str, every: int = 1):
        if not (isinstance(objective, str) and objective):
            raise ValueError(
                f"objective must be an objective's name, got {objective!r}"
            )
        if not (isinstance(every, int) and every >= 1):
            raise ValueError(f"every must be an integer >= 1, got {every!r}")
        self.objective = objective
        self.every = every
        self.steps: list[int] = []
        self.norms: list[float] = []

    def __call__(self, step: int, model: nn.Module, losses: dict[str, Tensor]) -> None:
        if step % self.every:
            return
        if self.objective not in losses:
            raise ValueError(
                f"GradientNorm: objective {self.objective!r} is not among the model's "
                f"({sorted(losses)})"
            )
        params = [p for p in model.parameters() if p.requires_grad]
        grads = torch.autograd.grad(
            losses[self.objective], params, retain_graph=True, allow_unused=True
        )
        squares = [g.square().sum() for g in grads if g is not None]
        self.norms.append(float(torch.stack(squares).sum().sqrt()) if squares else 0.0)
        self.steps.append(step)


class GradientCosine:
    """A step callback recording the cosine between pairs of objectives' gradients on a
    model's part.

    pairs:  the (objective, objective) pairs to compare, by objective name.
    every:  measure at steps 0, every, 2·every, ... (each measurement costs one extra
            backward pass per objective named in `pairs`).
    module: the model's part (attribute name) to take gradients over, e.g. "bottom" or
            "experts"; None (default): all of `model.shared_parameters()`, the
            parameters more than one objective reaches (embeddings and bottom, or
            embeddings, experts and gates).

    After training: `steps` lists the steps measured, `cosines[(a, b)]` the cosine at
    each. The cosine is NaN at a step where either gradient is zero
    (e.g. a masked objective with no eligible sample in the batch); parameters one
    objective does not reach count as zero gradient for it, so objectives with disjoint
    parameters (as in `SingleTask`) have cosine 0.
    """

    def __init__(
        self,
        pairs: Sequence[tuple[str, str]],
        every: int = 20,
        module: str | None = None,
    ):
        pairs = [tuple(p) for p in pairs]
        if not pairs or any(
            len(p) != 2 or not all(isinstance(n, str) for n in p) for p in pairs
        ):
            raise ValueError(
                "pairs must be one or more (objective, objective) name pairs, got "
                f"{pairs}"
            )
        if not (isinstance(every, int) and every >= 1):
            raise ValueError(f"every must be an integer >= 1, got {every!r}")
        self.pairs: list[tuple[str, str]] = pairs
        self.every = every
        self.module = module
        self.steps: list[int] = []
        self.cosines: dict[tuple[str, str], list[float]] = {p: [] for p in pairs}

    def __call__(self, step: int, model: nn.Module, losses: dict[str, Tensor]) -> None:
        if step % self.every:
            return
        params = [p for p in self._parameters(model) if p.requires_grad]
        names = list(dict.fromkeys(n for p in self.pairs for n in p))
        for name in names:
            if name not in losses:
                raise ValueError(
                    f"GradientCosine: objective {name!r} is not among the model's "
                    f"({sorted(losses)})"
                )
        # each (n_params,)
        grads = {name: flat_gradient(losses[name], params) for name in names}
        for a, b in self.pairs:
            self.cosines[(a, b)].append(self._cosine(grads[a], grads[b]))
        self.steps.append(step)

    def _parameters(self, model: nn.Module) -> list[nn.Parameter]:
        if self.module is None:
            if not hasattr(model, "shared_parameters"):
                raise ValueError(
                    "GradientCosine: the model has no shared_parameters(); name a "
                    "part with module="
                )
            params = list(model.shared_parameters())
            if not params:
                raise ValueError(
                    f"GradientCosine: {type(model).__name__} shares no parameters; "
                    "name a part with module="
                )
            return params
        part = getattr(model, self.module, None)
        if not isinstance(part, nn.Module):
            raise ValueError(
                f"GradientCosine: the model has no part {self.module!r} to take "
                "gradients over"
            )
        return list(part.parameters())

    @staticmethod
    def _cosine(g_a: Tensor, g_b: Tensor) -> float:
        norm = float(g_a.norm() * g_b.norm())
        return float(g_a @ g_b) / norm if norm > 0 else math.nan


def dead_units(model: nn.Module, batch: Batch, under: str = "") -> float:
    """The share of the ReLU units in `model`'s submodules named `under...` (all, by
    default; "towers" for the towers) whose output is 0 on every sample of `batch`.
    ValueError if there is no such ReLU."""
    relus = [
        layer
        for name, layer in model.named_modules()
        if name.startswith(under) and isinstance(layer, nn.ReLU)
    ]
    if not relus:
        raise ValueError(f"the model has no ReLU layer under {under!r}")
    fired: dict[int, Tensor] = {}  # ReLU → (units,) bool: fired on some sample

    def record(k: int, output: Tensor) -> None:
        now = (output.flatten(0, -2) > 0).any(0)
        fired[k] = fired[k] | now if k in fired else now

    hooks = [
        relu.register_forward_hook(lambda _, __, out, k=k: record(k, out))
        for k, relu in enumerate(relus)
    ]
    try:
        predict(model, batch)  # in chunks: a unit is alive if it fires in any
    finally:
        for hook in hooks:
            hook.remove()
    return float((~torch.cat(list(fired.values()))).float().mean())
