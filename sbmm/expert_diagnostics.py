"""What a gated model's experts do: gate weights, use, dead units, output norms,
capture and gradients, measured on a probe batch during training or after it.

    probe = data.valid[:1024]                      # a fixed batch with labels
    diagnostics = ExpertDiagnostics(probe, every=1)
    sbmm.fit(model, data.train, data.valid, epoch_callbacks=[diagnostics])
    epochs, use = diagnostics.series("use")        # (n,), (n, experts, tasks)

It works with `fit` and `fit_replicas` alike (`epoch_callbacks`): before the first
epoch (epoch 0) and after every `every`-th, each run's model is measured, and the
snapshots are kept per seed. `expert_snapshot(model, batch)` measures once.

What a snapshot holds, for experts e and tasks (towers) t, g_t(x) being t's gate
weights over the experts on sample x:

    use[e, t]        mean_x g_t(x)_e            how much t leans on e (its gate's mean)
    entropy[t]       mean_x −Σ_e g_t(x)_e log g_t(x)_e   in nats; log E when uniform,
                                                         0 when one expert takes all
    capture[e]       max_t use[e, t] / Σ_t use[e, t]     1/T when shared evenly, 1
                                                         when one task holds it
                                                         (HoME's expert degradation)
    dead[e]          share of e's hidden units never above 0 on the probe: units that
                     no longer learn (HoME's expert collapse)
    output_norm[e]   mean_x |e(x)|, the size of what e gives the gates
    grad_norm[e, t]  |∂L_t/∂θ_e|, the gradient e's parameters receive from t's loss
                     L_t = Σ_o w_o L_o over t's objectives (a scarce task's specific
                     experts starve when it is small: HoME's expert underfitting)

The model is measured in evaluation mode (dropout off, batch norm on its running
statistics) and put back in the mode it was in; nothing random is drawn, so a run
trains the same with the diagnostics on or off. Its cost is one forward pass on the
probe and one backward pass per task: `benchmarks/expert_diagnostics.py` prints it as
a ratio of a training step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .data.batch import Batch
from .losses import objective_losses, weighted_sum
from .models.base import MultiTaskModel
from .validation import is_count

__all__ = ["ExpertDiagnostics", "ExpertSnapshot", "expert_snapshot"]

FIELDS = ("use", "entropy", "capture", "dead", "output_norm", "grad_norm")


@dataclass(frozen=True)
class ExpertSnapshot:
    """A gated model's experts on a probe batch, at one epoch (see the module).

    epoch:       epochs trained when measured (0: before training).
    experts:     the experts' names (E), as the model's `expert_trace` gives them.
    tasks:       the towers' names (T).
    use:         (E, T) each task's mean gate weight on each expert; columns sum to 1.
    entropy:     (T,) each task's mean gate entropy, in nats.
    capture:     (E,) the share of an expert's gate mass that its top task gives.
    dead:        (E,) the share of an expert's hidden units never above 0.
    output_norm: (E,) the mean L2 norm of an expert's output.
    grad_norm:   (E, T) the norm of each task's loss gradient on each expert.
    """

    epoch: int
    experts: tuple[str, ...]
    tasks: tuple[str, ...]
    use: np.ndarray
    entropy: np.ndarray
    capture: np.ndarray
    dead: np.ndarray
    output_norm: np.ndarray
    grad_norm: np.ndarray


def expert_snapshot(
    model: MultiTaskModel, batch: Batch, epoch: int = 0
) -> ExpertSnapshot:
    """Measure `model`'s experts on `batch` (features and labels; the labels give the
    gradients). A ValueError when the model has no experts to trace (it needs
    `expert_trace` and `expert_parameters`, as `MMoE`, `OMoE` and `PLE` have)."""
    if not all(hasattr(model, m) for m in ("expert_trace", "expert_parameters")):
        raise ValueError(
            f"expert diagnostics need a gated model (MMoE, OMoE, PLE); "
            f"{type(model).__name__} has no expert_trace"
        )
    device = next(model.parameters()).device
    batch = Batch(batch.features, batch.labels).to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            trace = model.expert_trace(batch.features)
        grad_norm = _gradient_norms(model, batch, trace.names)
    finally:
        model.train(was_training)
    tasks = tuple(trace.gates)
    gates = torch.stack([trace.gates[t] for t in tasks], dim=2).float()  # (B, E, T)
    use = gates.mean(0)  # (E, T)
    logs = torch.where(gates > 0, gates.clamp_min(1e-30).log(), 0.0)
    entropy = -(gates * logs).sum(1).mean(0)  # (T,)
    capture = use.max(1).values / use.sum(1).clamp_min(1e-30)  # (E,)
    dead = torch.stack([(u <= 0).all(0).float().mean() for u in trace.units])  # (E,)
    output_norm = trace.outputs.float().norm(dim=2).mean(0)  # (E,)
    return ExpertSnapshot(
        epoch=epoch,
        experts=trace.names,
        tasks=tasks,
        use=use.cpu().numpy(),
        entropy=entropy.cpu().numpy(),
        capture=capture.cpu().numpy(),
        dead=dead.cpu().numpy(),
        output_norm=output_norm.cpu().numpy(),
        grad_norm=grad_norm,
    )


def _gradient_norms(
    model: MultiTaskModel, batch: Batch, experts: tuple[str, ...]
) -> np.ndarray:
    """(E, T): |∂L_t/∂θ_e| for each expert e and tower t, on `batch`."""
    losses = objective_losses(model.tower_specs, model(batch.features), batch)
    params = model.expert_parameters()  # {expert: [parameter, ...]}
    flat = [p for e in experts for p in params[e]]
    sizes = [len(params[e]) for e in experts]
    norms = np.zeros((len(experts), len(model.tower_specs)))
    for j, tower in enumerate(model.tower_specs):
        loss = weighted_sum((o.weight, losses[o.name]) for o in tower.objectives)
        if not loss.requires_grad:  # no objective of the tower had a row
            continue
        grads = torch.autograd.grad(loss, flat, retain_graph=True, allow_unused=True)
        start = 0
        for i, size in enumerate(sizes):
            squares = [
                g.square().sum() for g in grads[start : start + size] if g is not None
            ]
            norms[i, j] = float(torch.stack(squares).sum().sqrt()) if squares else 0.0
            start += size
    return norms


class ExpertDiagnostics:
    """An epoch callback (`fit(..., epoch_callbacks=[...])`, and `fit_replicas`'s)
    recording an `ExpertSnapshot` of every run's model on a fixed probe batch.

    probe: a Batch with features and labels (a slice of the validation data, say
           1,024 rows: the cost grows with it).
    every: measure at epochs 0, every, 2·every, ... (0 is before training).

    After training: `snapshots[seed]` lists one run's snapshots (the seed given to
    `fit`, None without one; each replica's own seed in `fit_replicas`), and
    `series(field, seed)` stacks one field over the epochs measured.
    """

    def __init__(self, probe: Batch, every: int = 1):
        if not isinstance(probe, Batch):
            raise TypeError(
                f"ExpertDiagnostics: probe must be an sbmm.Batch, got "
                f"{type(probe).__name__}"
            )
        if not is_count(every):
            raise ValueError(
                f"ExpertDiagnostics: every must be an integer >= 1, got {every!r}"
            )
        self.probe = Batch(probe.features, probe.labels)
        self.every = every
        self.snapshots: dict[int | None, list[ExpertSnapshot]] = {}

    def __call__(self, epoch: int, model: nn.Module, seed: int | None = None) -> None:
        if epoch % self.every:
            return
        snapshot = expert_snapshot(model, self.probe, epoch)
        self.snapshots.setdefault(seed, []).append(snapshot)

    @property
    def seeds(self) -> list[int | None]:
        """The runs measured, by seed, in the order they were first measured."""
        return list(self.snapshots)

    def series(
        self, field: str, seed: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One run's `field` (one of `FIELDS`) over the epochs measured:
        (epochs (n,), values (n, ...)). With one run measured, `seed` may be left
        out. ValueError naming the field or the seed when there is none such."""
        if field not in FIELDS:
            raise ValueError(
                f"ExpertDiagnostics.series: field must be one of {FIELDS}, got "
                f"{field!r}"
            )
        if seed is None and None not in self.snapshots and len(self.snapshots) == 1:
            seed = next(iter(self.snapshots))
        if seed not in self.snapshots:
            raise ValueError(
                f"ExpertDiagnostics.series: no run with seed {seed!r} was measured "
                f"(measured: {self.seeds})"
            )
        runs = self.snapshots[seed]
        epochs = np.array([s.epoch for s in runs])
        return epochs, np.stack([getattr(s, field) for s in runs])
