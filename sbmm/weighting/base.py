"""`Weighting`, the base every strategy shares, and the gradient plumbing of the
strategies that combine the objectives' gradients themselves.

A strategy sees the per-objective losses and, where it needs gradients, the model's
`shared_parameters()`; `fit` drives it (see the package's docstring for the calls).
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from ..losses import declared_weights, weighted_sum
from ..models.base import MultiTaskModel

__all__ = ["GradientWeighting", "Weighting", "flat_gradient"]


class Weighting:
    """Base class. Subclasses implement `backward` and, if their weights change,
    `weights`."""

    takes_gradients = (
        False  # whether `backward` takes gradients itself (refused under DDP)
    )
    # Whether the strategy's gradient is that of Σ_o w_o·L_o under float `weights()`
    # with no parameters of its own, so that `fit_replicas` can train K copies in one
    # pass.
    batchable = False

    def bind(self, model: MultiTaskModel) -> None:
        self.model = model
        self.names = [o.name for o in model.objectives]
        self.declared = declared_weights(model.tower_specs)

    def total(self, losses: Mapping[str, Tensor]) -> Tensor:
        """Σ_o w_o·L_o under the weights in force now (detached): the one combination
        History records for training and validation alike."""
        weights = self.weights()
        with torch.no_grad():
            return weighted_sum((weights[name], losses[name]) for name in self.names)

    def parameters(self) -> list[nn.Parameter]:
        """The strategy's own trainable parameters (the optimiser trains them with the
        model's)."""
        return []

    def weights(self) -> dict[str, float]:
        return dict(self.declared)

    def backward(self, losses: Mapping[str, Tensor]) -> Tensor:
        """Backpropagate Σ_o w_o·L_o under `weights()`; a strategy whose weights are
        tensors or need gradients of their own overrides it."""
        weights = self.weights()
        total = weighted_sum((weights[name], losses[name]) for name in self.names)
        total.backward()
        return total.detach()

    def after_step(self) -> None:
        pass

    def end_epoch(self, epoch_losses: Mapping[str, float]) -> None:
        pass

    # The attributes a strategy learns during a run (checkpointed); everything else
    # comes from the constructor's arguments or is rebuilt by `bind`.
    STATE: tuple[str, ...] = ()

    def state_dict(self) -> dict:
        """The strategy's learned state (its parameters and running statistics), for
        checkpoints."""
        return {key: getattr(self, key) for key in self.STATE}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore `state_dict()` into a bound strategy; parameters are copied in place
        (the optimiser keeps referring to them)."""
        if set(state) != set(self.STATE):
            raise ValueError(
                f"{type(self).__name__}: a checkpoint's state has {sorted(state)}, "
                f"expected {sorted(self.STATE)}"
            )
        for key, value in state.items():
            current = getattr(self, key)
            if isinstance(current, nn.Parameter):
                with torch.no_grad():
                    current.copy_(value)
            else:
                setattr(self, key, value)

    def _check_names(self, names, what: str) -> None:
        unknown = sorted(set(names) - set(self.names))
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: {what} names unknown objective(s) {unknown}; "
                f"the model has {self.names}"
            )


class GradientWeighting(Weighting):
    """Base of the strategies that combine the objectives' gradients on the shared
    parameters themselves (MGDA, CAGrad, Nash-MTL, MetaBalance).

    Every step: g_o = ∇_θsh c_o·L_o, one backward pass per objective into the shared
    parameters θsh (`model.shared_parameters()`), stacked into G (K, n_shared); the
    strategy turns G into the shared gradient d (n_shared,) (`combine`); the other
    parameters (towers, per-tower gates) get the gradient of Σ_o c_o·L_o, each only
    from its own objectives, unless the strategy weights the losses themselves
    (`tower_weights`). K + 1 backward passes a step, against Static's one: the cost
    `benchmarks/weighting_cost.py` measures.

    `weights()` are the declared c_o (what validation's "total" and `keep_best`
    compare); `coefficients()` the strategy's own weights over the objectives'
    gradients at the last step.
    """

    takes_gradients = True
    # Whether a model without shared parameters is refused (PCGrad has nothing to
    # project there, and trains it as Static does).
    needs_shared = True

    def bind(self, model: MultiTaskModel) -> None:
        super().bind(model)
        self.shared = [p for p in model.shared_parameters() if p.requires_grad]
        if not self.shared and self.needs_shared:
            raise ValueError(
                f"{type(self).__name__} combines gradients on shared parameters, and "
                f"{type(model).__name__} shares none"
            )
        shared = {id(p) for p in self.shared}
        self.others = [
            p for p in model.parameters() if p.requires_grad and id(p) not in shared
        ]
        self.alpha = torch.ones(len(self.names))  # (K,) the last step's coefficients

    def coefficients(self) -> dict[str, float]:
        """{objective: the strategy's weight on its gradient g_o at the last step}."""
        return dict(zip(self.names, self.alpha.tolist()))

    def combine(self, grads: Tensor) -> Tensor:  # pragma: no cover - abstract
        """(K, n_shared) per-objective gradients → (n_shared,) the shared gradient;
        sets `self.alpha` (K,)."""
        raise NotImplementedError

    def tower_weights(self) -> Tensor:
        """(K,) multipliers of c_o·L_o in the loss that trains the other parameters;
        ones (their ordinary gradients) unless the strategy weights losses."""
        return torch.ones(len(self.names))

    def backward(self, losses: Mapping[str, Tensor]) -> Tensor:
        terms = [self.declared[n] * losses[n] for n in self.names]  # K × 0-d
        if not self.shared:
            total = sum(terms)
            total.backward()
            return total.detach()
        grads = torch.stack([flat_gradient(t, self.shared) for t in terms])  # (K, n)
        shared = self.combine(grads)  # (n_shared,)
        scale = self.tower_weights().to(grads)
        total = sum(s * t for s, t in zip(scale, terms))
        if self.others:
            torch.autograd.backward(total, inputs=self.others)
        offset = 0
        for p in self.shared:
            p.grad = shared[offset : offset + p.numel()].view_as(p).clone()
            offset += p.numel()
        return sum(terms).detach()


def flat_gradient(loss: Tensor, params: list[nn.Parameter]) -> Tensor:
    """∂loss/∂params flattened into one (n_params,) vector, zeros where the loss does
    not reach a parameter; the graph is kept for the next gradient."""
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return torch.cat(
        [
            (torch.zeros_like(p) if g is None else g).reshape(-1)
            for p, g in zip(params, grads)
        ]
    )
