"""Loss-weighting strategies: how per-objective losses become the gradients the
optimiser applies.

A strategy is independent of the architecture (LibMTL's split): it sees the
per-objective losses and, where it needs gradients, the model's `shared_parameters()`.
Each starts from the declared weights, c_o = w_tower · w_objective, and
`fit(model, ..., weighting=strategy)` drives it:

    strategy.bind(model)                 once: check names, create the strategy's own
                                         parameters
    strategy.backward(losses) → total    every step: set the parameters' .grad; returns
                                         the weighted total Σ_o w_o·L_o under the
                                         weights in force, detached (what History
                                         records as "total")
    strategy.after_step()                every step, after the optimiser's step
    strategy.end_epoch(epoch_losses)     every epoch, with the epoch's mean loss per
                                         objective
    strategy.weights() → {objective: w}  the weights in force now (recorded in
                                         History.weights)
    strategy.total(losses) → total       Σ_o w_o·L_o under the weights in force:
                                         validation's "total" and what `keep_best`
                                         compares, so training and validation measure
                                         one thing

A strategy that takes gradients itself (`takes_gradients`, GradNorm and PCGrad) cannot
run inside DistributedDataParallel, which only averages what `backward` leaves in
`.grad`.

Strategies: `Static` (the declared weights, or given ones), `Uncertainty` (Kendall et
al., 2018), `GradNorm` (Chen et al., 2018), `DWA` (Liu et al., 2019), `PCGrad` (Yu et
al., 2020).
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from .models.base import MultiTaskModel
from .losses import declared_weights, weighted_sum
from .validation import check_number

__all__ = ["Weighting", "Static", "Uncertainty", "GradNorm", "DWA", "PCGrad"]


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


class Static(Weighting):
    """Fixed weights: the declared c_o = w_tower · w_objective, or, for the objectives
    `weights` names ({objective: weight}), w_tower · weight: the given weight takes the
    place of the objective's own weight, inside its tower."""

    batchable = True

    def __init__(self, weights: Mapping[str, float] | None = None):
        self.given = dict(weights or {})
        for name, w in self.given.items():
            check_number(f"Static: the weight of objective {name!r}", w)

    def bind(self, model: MultiTaskModel) -> None:
        super().bind(model)
        self._check_names(self.given, "weights")
        tower_of = {o.name: t for t in model.tower_specs for o in t.objectives}
        for name, w in self.given.items():
            self.declared[name] = tower_of[name].weight * w


class Uncertainty(Weighting):
    """Homoscedastic-uncertainty weighting (Kendall et al., 2018).

    One learned log-variance s_o = log σ_o² per objective:
    L = Σ_o ½·exp(−s_o)·c_o·L_o + ½·s_o.
    For a fixed loss value ℓ the term is minimised at s = log ℓ, so the weight
    ½·exp(−s) settles at 1/(2ℓ): objectives with larger losses (noisier ones) are
    weighted down.
    """

    STATE = ("log_var",)

    def bind(self, model: MultiTaskModel) -> None:
        super().bind(model)
        device = next(model.parameters()).device
        self.log_var = nn.Parameter(
            torch.zeros(len(self.names), device=device)
        )  # (n_objectives,)

    def parameters(self) -> list[nn.Parameter]:
        return [self.log_var]

    def weights(self) -> dict[str, float]:
        w = (0.5 * torch.exp(-self.log_var.detach())).tolist()
        return {name: self.declared[name] * wi for name, wi in zip(self.names, w)}

    def backward(self, losses: Mapping[str, Tensor]) -> Tensor:
        terms = torch.stack(
            [self.declared[n] * losses[n] for n in self.names]
        )  # (n_objectives,)
        precision = 0.5 * torch.exp(-self.log_var)  # (n_objectives,)
        (precision * terms + 0.5 * self.log_var).sum().backward()
        return (precision * terms).sum().detach()


class DWA(Weighting):
    """Dynamic weight average (Liu et al., 2019).

    With r_o = L_o(t−1) / L_o(t−2), the ratio of an objective's mean loss over the last
    two epochs, epoch t weighs objective o by
    K · exp(r_o / T) / Σ_j exp(r_j / T)  (K objectives, temperature T), times its
    declared c_o. The first two epochs use weight 1. A loss that falls slowly gets more
    weight.
    """

    batchable = True

    STATE = ("history", "lambdas")

    def __init__(self, temperature: float = 2.0):
        check_number("DWA: temperature", temperature, strict=True)
        self.temperature = temperature

    def bind(self, model: MultiTaskModel) -> None:
        super().bind(model)
        self.history: list[dict[str, float]] = []
        self.lambdas = {name: 1.0 for name in self.names}

    def weights(self) -> dict[str, float]:
        return {n: self.declared[n] * self.lambdas[n] for n in self.names}

    def end_epoch(self, epoch_losses: Mapping[str, float]) -> None:
        self.history.append({n: epoch_losses[n] for n in self.names})
        if len(self.history) < 2:
            return
        before, last = self.history[-2], self.history[-1]
        ratios = torch.tensor(
            [last[n] / max(before[n], 1e-12) for n in self.names], dtype=torch.float64
        )
        lambdas = len(self.names) * torch.softmax(ratios / self.temperature, dim=0)
        self.lambdas = dict(zip(self.names, lambdas.tolist()))


class GradNorm(Weighting):
    """GradNorm (Chen et al., 2018): learn weights that balance the objectives' gradient
    norms.

    W is the model's last shared layer (the last weight matrix among
    `shared_parameters()`). Each step, with weights w_o (initially 1) and relative
    inverse training rates r_o = (L_o(t)/L_o(0)) / mean_j(·):

        G_o = ‖∇_W w_o·c_o·L_o‖,   target_o = mean_j(G_j) · r_o^α   (held constant),
        L_grad = Σ_o |G_o − target_o|   trains the w_o;
        Σ_o w_o·c_o·L_o trains the model.

    After each optimiser step the weights are renormalised to sum to the number of
    objectives.
    α: how strongly to pull lagging objectives up (the paper's asymmetry; 1.5 by
    default).
    """

    STATE = ("w", "initial")
    takes_gradients = True

    def __init__(self, alpha: float = 1.5):
        check_number("GradNorm: alpha", alpha)
        self.alpha = alpha

    def bind(self, model: MultiTaskModel) -> None:
        super().bind(model)
        matrices = [p for p in model.shared_parameters() if p.dim() >= 2]
        if not matrices:
            raise ValueError(
                f"GradNorm needs a shared layer, and {type(model).__name__} shares none"
            )
        self.layer = matrices[-1]
        device = self.layer.device
        self.w = nn.Parameter(
            torch.ones(len(self.names), device=device)
        )  # (n_objectives,)
        self.initial: Tensor | None = None

    def parameters(self) -> list[nn.Parameter]:
        return [self.w]

    def weights(self) -> dict[str, float]:
        return {
            n: self.declared[n] * w
            for n, w in zip(self.names, self.w.detach().tolist())
        }

    def backward(self, losses: Mapping[str, Tensor]) -> Tensor:
        terms = torch.stack(
            [self.declared[n] * losses[n] for n in self.names]
        )  # (n_objectives,)
        if self.initial is None:
            self.initial = terms.detach().clamp_min(1e-12)
        norms = torch.stack(
            [
                torch.autograd.grad(
                    self.w[i] * terms[i],
                    self.layer,
                    retain_graph=True,
                    create_graph=True,
                )[0].norm()
                for i in range(len(self.names))
            ]
        )  # (n_objectives,): G_o, differentiable in w
        ratio = terms.detach() / self.initial
        target = (norms.mean() * (ratio / ratio.mean()) ** self.alpha).detach()
        (self.w.grad,) = torch.autograd.grad(
            (norms - target).abs().sum(), self.w, retain_graph=True
        )
        total = (self.w.detach() * terms).sum()
        total.backward()
        return total.detach()

    def after_step(self) -> None:
        with torch.no_grad():
            self.w.clamp_(min=1e-6)
            self.w.mul_(len(self.names) / self.w.sum())


class PCGrad(Weighting):
    """Projecting conflicting gradients (Yu et al., 2020), on the model's shared
    parameters.

    Each objective's gradient g_o = ∇ c_o·L_o on the shared parameters is, for every
    other objective j in random order, projected off g_j when they conflict
    (g_o·g_j < 0):  g_o ← g_o − (g_o·g_j/‖g_j‖²) g_j. The shared parameters get Σ_o of
    the projected g_o; the others (towers) their ordinary gradients.
    """

    takes_gradients = True

    def bind(self, model: MultiTaskModel) -> None:
        super().bind(model)
        self.shared = [p for p in model.shared_parameters() if p.requires_grad]

    def backward(self, losses: Mapping[str, Tensor]) -> Tensor:
        terms = [self.declared[n] * losses[n] for n in self.names]
        total = sum(terms)
        if self.shared:
            grads = torch.stack(
                [flat_gradient(t, self.shared) for t in terms]
            )  # (K, n_shared)
            merged = project_conflicts(grads).sum(0)  # (n_shared,)
        total.backward()
        if self.shared:
            offset = 0
            for p in self.shared:
                p.grad = merged[offset : offset + p.numel()].view_as(p).clone()
                offset += p.numel()
        return total.detach()


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


def project_conflicts(
    grads: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """PCGrad's projection: (K, n) gradients → (K, n), each row projected off every
    other row it conflicts with, visiting the others in random order (from `generator`,
    or torch's global generator)."""
    projected = grads.clone()
    k = grads.shape[0]
    for i in range(k):
        for j in torch.randperm(k, generator=generator).tolist():
            if j == i:
                continue
            dot = projected[i] @ grads[j]
            if dot < 0:
                projected[i] -= dot / grads[j].pow(2).sum().clamp_min(1e-20) * grads[j]
    return projected
