import torch

from sbmm import book
from sbmm.book.article import as_shared_bottom, train_seed


def test_seed_model_has_the_articles_layers_and_4565_parameters():
    model = book.SharedBottomMultiTaskModel(10, 64, 32, 16, 3, 2)
    assert sum(p.numel() for p in model.parameters()) == 4565
    shapes = [tuple(p.shape) for p in model.parameters()]
    assert shapes == [
        (64, 10),
        (64,),
        (32, 64),
        (32,),
        (16, 32),
        (16,),
        (32, 16),
        (32,),
        (3, 32),
        (3,),
        (32, 16),
        (32,),
        (2, 32),
        (2,),
    ]


def test_seed_forward_returns_a_tuple_of_the_two_tasks():
    model = book.SharedBottomMultiTaskModel(10, 64, 32, 16, 3, 2)
    out = model(torch.randn(7, 10))
    assert isinstance(out, tuple) and [t.shape for t in out] == [(7, 3), (7, 2)]


def test_seed_is_a_shared_bottom_with_two_regression_towers():
    torch.manual_seed(0)
    seed = book.SharedBottomMultiTaskModel(10, 64, 32, 16, 3, 2)
    shared = as_shared_bottom(seed)
    x = torch.randn(9, 10)
    task1, task2 = seed(x)
    out = shared({"x": x})
    assert torch.equal(out["task1"], task1) and torch.equal(out["task2"], task2)
    assert shared.parameter_summary()["total"] == 4565


def test_seed_loop_is_reproducible_and_learns_nothing_from_random_targets():
    def run():
        torch.manual_seed(42)
        X, y1, y2 = torch.randn(200, 10), torch.randn(200, 3), torch.randn(200, 2)
        model = book.SharedBottomMultiTaskModel(10, 64, 32, 16, 3, 2)
        return train_seed(model, X, y1, y2, epochs=3), y1.var(
            0, unbiased=False
        ).mean() + y2.var(0, unbiased=False).mean()

    (losses, floor), (again, _) = run(), run()
    assert losses == again and len(losses) == 3
    assert abs(losses[-1] - float(floor)) < 0.25 * float(floor)
