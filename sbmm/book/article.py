"""The seed article's model, kept exactly as it was published so that its experiment
stays runnable.

Three shared Linear+ReLU layers, then two task heads of two Linear layers each; forward
returns the tuple (task1, task2). `SharedBottomMultiTaskModel(10, 64, 32, 16, 3, 2)` has
4,565 parameters. `sbmm.SharedBottom` is the same architecture grown into declarations
(features, towers, objectives); `as_shared_bottom` converts one into the other, and
`train_seed` is the article's training loop.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from ..inputs import Dense
from ..models.shared_bottom import SharedBottom
from ..objectives import Objective, Tower

__all__ = ["SharedBottomMultiTaskModel", "train_seed", "as_shared_bottom"]


class SharedBottomMultiTaskModel(nn.Module):
    def __init__(
        self,
        input_dim,
        hidden1_dim,
        hidden2_dim,
        hidden3_dim,
        output_task1_dim,
        output_task2_dim,
    ):
        super().__init__()
        # The shared bottom: three fully connected layers.
        self.shared_bottom = nn.Sequential(
            nn.Linear(input_dim, hidden1_dim),
            nn.ReLU(),
            nn.Linear(hidden1_dim, hidden2_dim),
            nn.ReLU(),
            nn.Linear(hidden2_dim, hidden3_dim),
            nn.ReLU(),
        )
        # Task 1's head (the seed reuses hidden2_dim as the head's hidden width).
        self.task1_head = nn.Sequential(
            nn.Linear(hidden3_dim, hidden2_dim),
            nn.ReLU(),
            nn.Linear(hidden2_dim, output_task1_dim),
        )
        # Task 2's head.
        self.task2_head = nn.Sequential(
            nn.Linear(hidden3_dim, hidden2_dim),
            nn.ReLU(),
            nn.Linear(hidden2_dim, output_task2_dim),
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        shared_output = self.shared_bottom(x)  # (B, hidden3_dim)
        # (B, out1), (B, out2)
        return self.task1_head(shared_output), self.task2_head(shared_output)


def train_seed(
    model: SharedBottomMultiTaskModel,
    X: Tensor,
    y_task1: Tensor,
    y_task2: Tensor,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 1e-3,
) -> list[float]:
    """The seed article's training loop: a shuffled DataLoader, an MSE loss per task
    summed, Adam.

    X: (N, input_dim); y_task1: (N, output_task1_dim); y_task2: (N, output_task2_dim).
    Returns the mean training loss (loss_task1 + loss_task2) of each epoch, as the
    article prints it. It is also the baseline that `benchmarks/throughput.py` measures
    `sbmm.fit` against.
    """
    loader = DataLoader(
        TensorDataset(X, y_task1, y_task2), batch_size=batch_size, shuffle=True
    )
    criterion_task1, criterion_task2 = nn.MSELoss(), nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    epoch_losses = []
    for _ in range(epochs):
        model.train()
        running_loss = 0.0
        for X_batch, y_task1_batch, y_task2_batch in loader:
            outputs_task1, outputs_task2 = model(X_batch)
            total_loss = criterion_task1(
                outputs_task1, y_task1_batch
            ) + criterion_task2(outputs_task2, y_task2_batch)
            optimizer.zero_grad()
            total_loss.backward()
            optimizer.step()
            running_loss += total_loss.item()
        epoch_losses.append(running_loss / len(loader))
    return epoch_losses


def as_shared_bottom(model: SharedBottomMultiTaskModel) -> SharedBottom:
    """The same network as an `sbmm.SharedBottom`, weights copied: it computes the same
    function.

    The seed's input is the dense feature "x" (B, input_dim); its two heads become the
    towers "task1" and "task2", each with one regression objective of the head's output
    width ("task1", "task2").
    """
    first, last1, last2 = (
        model.shared_bottom[0],
        model.task1_head[-1],
        model.task2_head[-1],
    )
    towers = [
        Tower(
            "task1",
            [Objective("task1", "regression", dim=last1.out_features)],
            hidden=(model.task1_head[0].out_features,),
        ),
        Tower(
            "task2",
            [Objective("task2", "regression", dim=last2.out_features)],
            hidden=(model.task2_head[0].out_features,),
        ),
    ]
    bottom = tuple(
        layer.out_features
        for layer in model.shared_bottom
        if isinstance(layer, nn.Linear)
    )
    shared = SharedBottom([Dense("x", first.in_features)], towers, bottom=bottom)
    renamed = {
        key.replace("shared_bottom.", "bottom.")
        .replace("task1_head.", "towers.task1.")
        .replace("task2_head.", "towers.task2."): value
        for key, value in model.state_dict().items()
    }
    shared.load_state_dict(renamed)
    return shared
