"""Training spaces (`sbmm.spaces`): one object per objective, resolved once per set of
towers, saying which rows it counts and what loss it takes."""

import pytest
import torch

import sbmm
from sbmm import spaces
from sbmm.losses import objective_losses


def towers(space):
    like = [sbmm.Objective("like", given="click", space=space)]
    if space == "dr":
        like.append(sbmm.Objective("like_error", "regression", imputes="like"))
    return (
        sbmm.Tower(
            "feed", [sbmm.Objective("stay"), sbmm.Objective("click", given="stay")]
        ),
        sbmm.Tower("video", like),
    )


def labels():
    stay = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    click = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    like = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    return {"stay": stay, "click": click, "like": like}


@pytest.mark.parametrize(
    "space, cls",
    [
        ("masked", spaces.Masked),
        ("entire", spaces.Entire),
        ("ips", spaces.IPS),
        ("dr", spaces.DR),
    ],
)
def test_each_objective_resolves_to_its_space_once_per_towers(space, cls):
    declared = towers(space)
    resolved = spaces.resolve(declared)
    assert type(resolved["like"]) is cls
    assert type(resolved["stay"]) is spaces.Masked
    assert resolved is spaces.resolve(list(declared))  # built once, cached
    if space == "dr":
        assert type(resolved["like_error"]) is spaces.Imputation
        assert spaces.schedule(declared)[0] is resolved["like"]  # DR sets two: first


@pytest.mark.parametrize("space", ["masked", "entire", "ips", "dr"])
def test_rows_are_where_the_label_is_read_and_the_loss_averages(space):
    declared = towers(space)
    resolved = spaces.resolve(declared)
    y = labels()
    clicked = y["click"] > 0
    # Where like is read and scored: the clicked rows, in every space.
    assert torch.equal(resolved["like"].rows(y), clicked)
    # Where its loss averages: the clicked rows in its own space, every row otherwise.
    loss_rows = resolved["like"].loss_rows(y)
    assert (loss_rows is None) == (space != "masked")
    if space == "masked":
        assert torch.equal(loss_rows, clicked)
    # click given stay, masked: read where stay is 1.
    assert torch.equal(resolved["click"].rows(y), y["stay"] > 0)
    if space == "dr":  # the imputation is read where what it imputes is
        assert torch.equal(resolved["like_error"].rows(y), clicked)


def test_objective_losses_take_each_space_s_loss_in_declaration_order():
    declared = towers("dr")
    y = labels()
    batch = sbmm.Batch({}, y)
    predictions = {name: torch.zeros(6) for name in ("stay", "click", "like")}
    predictions["like_error"] = torch.zeros(6)
    losses = objective_losses(declared, predictions, batch)
    assert list(losses) == ["stay", "click", "like", "like_error"]
    assert torch.isfinite(torch.stack(list(losses.values()))).all()


def test_a_space_is_one_entry_and_an_unknown_one_is_named():
    assert {"masked", "entire", "ips", "dr", "escm2_ips", "escm2_dr"} <= set(
        spaces.SPACES
    )
    assert all(space.name == name for name, space in spaces.SPACES.items())
    with pytest.raises(ValueError, match="'everywhere'"):
        sbmm.Objective("like", given="click", space="everywhere")


def test_evaluate_counts_an_imputation_s_loss_over_the_rows_it_fits():
    declared = towers("dr")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 2, generator=g)
    stay = torch.ones(200)
    click = (torch.rand(200, generator=g) < 0.4).float()
    like = click * (torch.rand(200, generator=g) < 0.5).float()
    batch = sbmm.Batch({"x": x}, {"stay": stay, "click": click, "like": like})
    model = sbmm.SharedBottom([sbmm.Dense("x", 2)], declared, bottom=(4,))
    scores = sbmm.evaluate(model, batch)
    assert scores["like_error"]["n_loss"] == int(click.sum())
    assert scores["like"]["n_loss"] == 200
