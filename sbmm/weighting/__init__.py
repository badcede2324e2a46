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

A strategy that takes gradients itself (`takes_gradients`: GradNorm, PCGrad, MGDA,
CAGrad, Nash-MTL, MetaBalance, and FAMO for its logits) cannot run inside
DistributedDataParallel, which only averages what `backward` leaves in `.grad`. Only
`batchable` strategies (Static, DWA) train under `fit_replicas`.

One module per strategy, on the shared base (`base.py`), each pinned to its paper:

    static       Static       the declared weights, or given ones
    uncertainty  Uncertainty  Kendall et al., 2018
    gradnorm     GradNorm     Chen et al., 2018
    dwa          DWA          Liu et al., 2019
    pcgrad       PCGrad       Yu et al., 2020
    rlw          RLW          Lin et al., 2021 (random loss weighting)
    mgda         MGDA         Sener & Koltun, 2018
    cagrad       CAGrad       Liu et al., 2021
    nash_mtl     NashMTL      Navon et al., 2022
    famo         FAMO         Liu et al., 2023
    metabalance  MetaBalance  He et al., 2022

A new strategy is one module here and one import below; `sbmm.train.config` finds it
by its class name.
"""

from .base import Weighting, flat_gradient
from .cagrad import CAGrad
from .dwa import DWA
from .famo import FAMO
from .gradnorm import GradNorm
from .metabalance import MetaBalance
from .mgda import MGDA, min_norm_weights
from .nash_mtl import NashMTL
from .pcgrad import PCGrad, project_conflicts
from .rlw import RLW
from .static import Static
from .uncertainty import Uncertainty

__all__ = [
    "CAGrad",
    "DWA",
    "FAMO",
    "GradNorm",
    "MGDA",
    "MetaBalance",
    "NashMTL",
    "PCGrad",
    "RLW",
    "Static",
    "Uncertainty",
    "Weighting",
    "flat_gradient",
    "min_norm_weights",
    "project_conflicts",
]
