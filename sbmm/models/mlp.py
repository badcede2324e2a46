"""The multi-layer perceptron every bottom, expert and tower is made of, and the options
of its hidden layers.

    hidden layer:  Linear → (BatchNorm1d) → activation → (Dropout)
                   (with BatchNorm1d the Linear has no bias: the norm's shift replaces
                   it)
    mlp:           one hidden layer per width, then a plain Linear to out_dim, if given

The options (`LayerOptions`) are a model's, set once in its constructor: its bottom or
experts and its towers' hidden layers are all built with them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from torch import nn

from ..validation import is_count, is_number

__all__ = ["ACTIVATIONS", "LayerOptions", "check_widths", "mlp"]

# The activations a hidden layer can use, by name; each is built fresh per layer
# (PReLU learns its slope, one per layer).
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,  # slope 0.01 below zero
    "prelu": nn.PReLU,  # a learned slope below zero
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,  # also known as swish
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


@dataclass(frozen=True)
class LayerOptions:
    """How every hidden layer of a model's MLPs is built; checked on construction (a
    ValueError naming the option, a TypeError for a batch_norm that is not a bool).

    activation: a name in `ACTIVATIONS`; "relu" by default.
    dropout:    the probability of zeroing each unit after the activation while
                training, in [0, 1); 0 (no Dropout layer) by default.
    batch_norm: BatchNorm1d between the Linear (then without a bias: the norm's shift
                takes its place) and the activation; False by default. While training
                it needs batches of 2 rows or more.

    The defaults build the plain Linear → ReLU layers, parameter for parameter.
    """

    activation: str = "relu"
    dropout: float = 0.0
    batch_norm: bool = False

    def __post_init__(self):
        if not (isinstance(self.activation, str) and self.activation in ACTIVATIONS):
            choices = ", ".join(repr(name) for name in ACTIVATIONS)
            raise ValueError(
                f"activation must be one of {choices}, got {self.activation!r}"
            )
        if not (is_number(self.dropout) and 0 <= self.dropout < 1):
            raise ValueError(
                f"dropout must be a number in [0, 1), got {self.dropout!r}"
            )
        if not isinstance(self.batch_norm, bool):
            raise TypeError(
                f"batch_norm must be True or False, got {self.batch_norm!r}"
            )

    def mlp(
        self, in_dim: int, hidden: Sequence[int], out_dim: int | None = None
    ) -> nn.Sequential:
        """An MLP of these hidden layers: (B, in_dim) → (B, hidden[-1]), or
        (B, out_dim) through a final plain Linear when out_dim is given; with no
        hidden widths and no out_dim, the identity."""
        layers: list[nn.Module] = []
        for width in hidden:
            # Batch norm's shift takes the place of the Linear's bias.
            layers.append(nn.Linear(in_dim, width, bias=not self.batch_norm))
            if self.batch_norm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(ACTIVATIONS[self.activation]())
            if self.dropout > 0:
                layers.append(nn.Dropout(self.dropout))
            in_dim = width
        if out_dim is not None:
            layers.append(nn.Linear(in_dim, out_dim))
        return nn.Sequential(*layers)


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int | None = None,
    *,
    activation: str = "relu",
    dropout: float = 0.0,
    batch_norm: bool = False,
) -> nn.Sequential:
    """Linear → (BatchNorm1d if batch_norm) → activation → (Dropout(dropout) if > 0)
    for each width in `hidden`, then a final Linear to `out_dim` (none of them after
    it) if given. With batch norm the hidden Linears have no bias (the norm's shift
    replaces it). The options are checked as `LayerOptions` checks them.

    (B, in_dim) → (B, hidden[-1]), or (B, out_dim) when out_dim is given.
    """
    return LayerOptions(activation, dropout, batch_norm).mlp(in_dim, hidden, out_dim)


def check_widths(
    name: str, widths: Sequence[int], *, allow_empty: bool = False
) -> tuple[int, ...]:
    """`widths` as a tuple, or a ValueError naming `name` unless they are integers >= 1:
    one or more of them, or none with `allow_empty` (no layers: a bottom that passes
    the inputs through)."""
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Iterable):
        raise TypeError(
            f"{name} widths must be a sequence of integers, such as (32, 16), got "
            f"{widths!r}"
        )
    widths = tuple(widths)
    if not (widths or allow_empty) or not all(is_count(w) for w in widths):
        least = "zero" if allow_empty else "one"
        raise ValueError(
            f"{name} widths must be {least} or more integers >= 1, got {widths}"
        )
    return widths
