"""Experts and gates, the parts of the gated bottoms (MMoE, PLE).

An expert is an MLP like a shared bottom; a gate is a softmax over experts, computed
from the gate's input, that mixes the experts' outputs into one vector per sample:

    experts(x):        (B, d_in)  → (B, n_experts, d_out)
    gate(x, outputs):  (B, d_in), (B, n_experts, d_out) → (B, d_out),
                       Σ_e softmax(W x)_e · outputs_e

Two of the fixes Kuaishou's HoME (Wang et al., 2024, arXiv 2408.05430) makes to such
experts live here, each off by default (then the experts are the plain ones, weight
for weight under the same seed):

- expert normalisation (`ExpertOptions.norm`, with `activation="silu"`, HoME's Swish):
  every expert layer is Linear → BatchNorm1d → activation, so that all experts' outputs
  have comparable scales and none is starved of gate mass for being small.
- the feature gate (`ExpertOptions.feature_gate`): each expert reads its own view of
  the input, x ⊙ 2σ(x A_e B_e), with a low-rank (A_e: d_in × r, B_e: r × d_in) map.

`ExpertTrace` is what the expert diagnostics (`sbmm.expert_diagnostics`) read from a
gated model: its experts' names, outputs and hidden units, and every tower's gate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from ..validation import is_count
from .mlp import ACTIVATIONS, LayerOptions

__all__ = ["ExpertOptions", "ExpertTrace", "Experts", "FeatureGate", "Gate"]


@dataclass(frozen=True)
class ExpertOptions:
    """How a gated model's experts differ from its other MLPs; checked on construction
    (a ValueError or TypeError naming the option). The defaults change nothing.

    norm:         batch-normalise every expert layer's Linear output before its
                  activation (HoME's expert normalisation); the model's `batch_norm`
                  does the same for towers and experts alike. HoME normalises and then
                  applies Swish; here the activation stays the model's unless
                  `activation` is given.
    activation:   the experts' activation, by name (`ACTIVATIONS`); None: the
                  model's. "silu" is HoME's Swish, x·σ(x).
    feature_gate: the rank r of HoME's feature gate, an integer >= 1, or 0 for none:
                  expert e reads x ⊙ 2σ(x A_e B_e) instead of x. B_e starts at zero, so
                  each gate starts as the identity (2σ(0) = 1). HoME's feature gate is
                  the same low-rank 2σ form; it gates the embeddings per expert before
                  its hierarchy of gates, which this library does not build.
    """

    norm: bool = False
    activation: str | None = None
    feature_gate: int = 0

    def __post_init__(self):
        if not isinstance(self.norm, bool):
            raise TypeError(f"expert_norm must be True or False, got {self.norm!r}")
        if self.activation is not None and self.activation not in ACTIVATIONS:
            choices = ", ".join(repr(name) for name in ACTIVATIONS)
            raise ValueError(
                f"expert_activation must be None or one of {choices}, got "
                f"{self.activation!r}"
            )
        if not (self.feature_gate == 0 or is_count(self.feature_gate)):
            raise ValueError(
                "feature_gate must be the rank of the feature gate, an integer >= 1, "
                f"or 0 for none; got {self.feature_gate!r}"
            )

    def layers(self, options: LayerOptions) -> LayerOptions:
        """The experts' layer options: the model's `options` with these changes."""
        return replace(
            options,
            batch_norm=options.batch_norm or self.norm,
            activation=self.activation or options.activation,
        )


class FeatureGate(nn.Module):
    """HoME's feature gate for `n` experts: expert e's input is x ⊙ 2σ(x A_e B_e).

    (B, d) → (B, n, d); at initialisation every gate is 1 (B_e = 0), so the experts
    start on the plain input."""

    def __init__(self, dim: int, n: int, rank: int):
        super().__init__()
        self.down = nn.Parameter(torch.randn(n, dim, rank) / dim**0.5)  # A: (n, d, r)
        self.up = nn.Parameter(torch.zeros(n, rank, dim))  # B: (n, r, d)

    def forward(self, x: Tensor) -> Tensor:
        low = torch.einsum("bd,edr->ber", x, self.down)  # (B, n, r)
        scale = 2 * torch.sigmoid(torch.einsum("ber,erd->bed", low, self.up))
        return x.unsqueeze(1) * scale  # (B, n, d)


class Experts(nn.Module):
    """`n` independent MLPs of the same `widths` on the same input, every layer built
    with `options` (the model's activation, dropout and batch norm), changed by
    `experts` (`ExpertOptions`: normalisation, activation, feature gate).

    forward: (B, in_dim) → (B, n, widths[-1]).
    """

    def __init__(
        self,
        in_dim: int,
        widths: Sequence[int],
        n: int,
        options: LayerOptions,
        experts: ExpertOptions = ExpertOptions(),
    ):
        super().__init__()
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(
                f"the number of experts must be an integer >= 1, got {n!r}"
            )
        layers = experts.layers(options)
        self.nets = nn.ModuleList(layers.mlp(in_dim, widths) for _ in range(n))
        self.out_dim = widths[-1]
        rank = experts.feature_gate
        self.feature_gate = FeatureGate(in_dim, n, rank) if rank else None

    def inputs(self, x: Tensor) -> list[Tensor]:
        """What each expert reads, x or its feature-gated view: n × (B, d_in)."""
        if self.feature_gate is None:
            return [x] * len(self.nets)
        return list(self.feature_gate(x).unbind(1))

    def forward(self, x: Tensor) -> Tensor:
        views = self.inputs(x)
        return torch.stack([net(v) for net, v in zip(self.nets, views)], dim=1)

    def trace(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The experts' outputs (B, n, d_out) and, per expert, its hidden units after
        every activation, concatenated: n × (B, units)."""
        outputs, units = [], []
        for net, h in zip(self.nets, self.inputs(x)):
            fired = []
            for layer in net:
                h = layer(h)
                if isinstance(layer, tuple(ACTIVATIONS.values())):
                    fired.append(h)
            outputs.append(h)
            units.append(torch.cat(fired, dim=1))
        return torch.stack(outputs, dim=1), units


class Gate(nn.Module):
    """A linear softmax gate over `n_experts` experts, read from an input of width
    `in_dim`. With `batch_norm`, its logits are batch-normalised before the softmax
    (the Linear then has no bias), as torch-rechub's gates are."""

    def __init__(self, in_dim: int, n_experts: int, batch_norm: bool = False):
        super().__init__()
        if not isinstance(batch_norm, bool):
            raise TypeError(
                f"gate_batch_norm must be True or False, got {batch_norm!r}"
            )
        self.linear = nn.Linear(in_dim, n_experts, bias=not batch_norm)
        self.norm = nn.BatchNorm1d(n_experts) if batch_norm else nn.Identity()

    def weights(self, x: Tensor) -> Tensor:
        logits = self.norm(self.linear(x))  # (B, n_experts)
        return torch.softmax(logits, dim=-1)  # rows sum to 1

    def forward(self, x: Tensor, expert_outputs: Tensor) -> Tensor:
        # (B, n) · (B, n, d) → (B, d)
        return torch.einsum("be,bed->bd", self.weights(x), expert_outputs)


@dataclass(frozen=True)
class ExpertTrace:
    """A gated model's experts on a batch, as the diagnostics read them.

    names:   the experts, in a fixed order (E of them).
    outputs: (B, E, d) every expert's output.
    units:   E × (B, units): every expert's hidden units after each activation.
    gates:   {tower: (B, E)} each tower's gate weights over all E experts; an expert
             the tower's gate does not see (PLE's other towers' experts) has weight 0.
    """

    names: tuple[str, ...]
    outputs: Tensor
    units: tuple[Tensor, ...]
    gates: dict[str, Tensor]
