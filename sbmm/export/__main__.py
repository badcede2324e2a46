"""Export a trained run's model from its checkpoint, without a notebook.

    python -m sbmm.export RUN.pt --config RUN.toml --format onnx --out ranker.onnx
    python -m sbmm.export RUN.pt --config RUN.toml --format torchscript \\
        --out ranker.pt --fusion product --weight click=1 --weight like=0.5

The config (the one `python -m sbmm.train` ran) declares the model: its features (from
its [data], drawn or read as the run did), architecture, options and towers. The
checkpoint holds the weights: the best epoch's when the run kept them (keep_best or
early_stopping), otherwise, or with --last, the last epoch's. It is read with
`torch.load(weights_only=True)` (`sbmm.load_checkpoint`), so nothing in it runs. With
one --weight or more the file also computes the fused score (`sbmm.export.Fusion`:
--fusion weighted_sum or product, --terms heads or joint). The run's weighting
strategy is not exported: it weighs the losses in training. A bad config, a checkpoint
written for another model or other towers, or a bad weight exits with status 2 and a
message naming the file and what is wrong, before anything is written.
"""

from __future__ import annotations

import argparse

from ..train.checkpoint import _check_model, _check_towers, load_checkpoint
from ..train.config import load_run
from . import FORMATS, FORMS, TERMS, Fusion, export, load


def _weight(text: str) -> tuple[str, float]:
    """ "like=0.5" → ("like", 0.5); argparse reports a bad one."""
    name, _, value = text.partition("=")
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a weight is OBJECTIVE=NUMBER, got {text!r}"
        ) from None


def main(argv: list[str] | None = None) -> None:
    """Export the checkpoint named in `argv` (the command line by default)."""
    parser = argparse.ArgumentParser(
        prog="python -m sbmm.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", help="a checkpoint written by sbmm.train")
    parser.add_argument(
        "--config", required=True, help="the TOML run description it was trained by"
    )
    parser.add_argument("--format", choices=FORMATS, default="onnx")
    parser.add_argument("--out", required=True, help="the file to write")
    parser.add_argument(
        "--last", action="store_true", help="the last epoch's weights, not the best"
    )
    parser.add_argument(
        "--fusion", choices=FORMS, help="the fusion form (default weighted_sum)"
    )
    parser.add_argument(
        "--terms", choices=TERMS, help="what the fusion adds up (default heads)"
    )
    parser.add_argument(
        "--weight",
        type=_weight,
        action="append",
        default=[],
        metavar="OBJECTIVE=NUMBER",
        help="a fusion weight (repeat for each objective fused)",
    )
    args = parser.parse_args(argv)
    if (args.fusion or args.terms) and not args.weight:
        parser.error("--fusion and --terms need the fusion's weights: --weight")
    try:
        run = load_run(args.config)
        state = load_checkpoint(args.checkpoint)
        best = state.get("best_model")
        weights = state["model"] if args.last or best is None else best
        where = f"checkpoint {state.path}"
        _check_model(weights, run.model, where)
        _check_towers(state["towers"], run.model, where)
        run.model.load_state_dict(weights)
        fusion = None
        if args.weight:
            form, terms = args.fusion or FORMS[0], args.terms or TERMS[0]
            fusion = Fusion(dict(args.weight), form, terms)
        path = export(run.model, args.out, args.format, fusion=fusion)
    except (OSError, TypeError, ValueError) as error:
        parser.error(str(error))
    signature = load(path).signature  # the file loads and says what it reads
    epoch = "last" if args.last or best is None else "best"
    print(f"{path}: the {epoch} epoch's weights, {args.format}")
    print("inputs: " + ", ".join(s["name"] for s in signature["inputs"]))
    print("outputs: " + ", ".join(signature["outputs"]))


if __name__ == "__main__":
    main()
