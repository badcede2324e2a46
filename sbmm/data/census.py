"""UCI Census-Income (KDD): the real table of the MMoE paper's benchmark, with its two
tasks.

The data (Lane and Kohavi, UCI Machine Learning Repository; CC BY 4.0) are rows of the
1994 and 1995 US Current Population Surveys: 42 comma-separated columns, no header,
in two files, `census-income.data.gz` (199,523 rows) and `census-income.test.gz`
(99,762 rows). Ma et al. (2018, section 5.2) build two binary tasks from each row:

    income         the income column says "50000+." (about 6% of rows)
    never_married  the marital-status column says "Never married" (about 44%)

and every other column but the survey's sampling weight is a feature: 7 dense
(age, wages, capital gains and losses, dividends, employer size, weeks worked) and 32
categorical. The repository holds the test file (data/census-income/, with its
provenance); `load_census` reads it alone and splits it, or reads both files when the
training file is there too.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .encoding import Schema, split_frame

__all__ = ["CENSUS_COLUMNS", "CENSUS_SCHEMA", "CensusIncome", "load_census"]

# The 42 columns of UCI's files, in order (UCI's census-income.names, as the MMoE
# paper's reproductions name them).
CENSUS_COLUMNS = (
    "age", "class_worker", "det_ind_code", "det_occ_code", "education",
    "wage_per_hour", "hs_college", "marital_stat", "major_ind_code", "major_occ_code",
    "race", "hisp_origin", "sex", "union_member", "unemp_reason", "full_or_part_emp",
    "capital_gains", "capital_losses", "stock_dividends", "tax_filer_stat",
    "region_prev_res", "state_prev_res", "det_hh_fam_stat", "det_hh_summ",
    "instance_weight", "mig_chg_msa", "mig_chg_reg", "mig_move_reg", "mig_same",
    "mig_prev_sunbelt", "num_emp", "fam_under_18", "country_father", "country_mother",
    "country_self", "citizenship", "own_or_self", "vet_question", "vet_benefits",
    "weeks_worked", "year", "income_50k",
)  # fmt: skip
_DENSE = (
    "age", "wage_per_hour", "capital_gains", "capital_losses", "stock_dividends",
    "num_emp", "weeks_worked",
)  # fmt: skip
# Not features: the two tasks' source columns and the survey's sampling weight.
_NOT_FEATURES = ("marital_stat", "income_50k", "instance_weight")
CENSUS_SCHEMA = Schema(
    categorical=tuple(
        c for c in CENSUS_COLUMNS if c not in (*_DENSE, *_NOT_FEATURES)
    ),  # the integer codes (industry, occupation, year, ...) too: they name classes
    dense=_DENSE,
    labels=("income", "never_married"),
)
FILES = {"train": "census-income.data.gz", "test": "census-income.test.gz"}
# The repository's copy of UCI's test file.
DATA = Path(__file__).resolve().parents[2] / "data" / "census-income"


@dataclass
class CensusIncome:
    """The three splits, as tables with the `schema`'s columns, and where they came
    from.

    train, valid, test: DataFrames of the 39 feature columns and the 2 labels (0/1).
    schema:             `CENSUS_SCHEMA`, for a `TableEncoder`.
    files:              the files read.
    """

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    schema: Schema
    files: tuple[Path, ...]


def load_census(
    directory: str | Path = DATA,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> CensusIncome:
    """Read UCI's Census-Income (KDD) files from `directory` and split them.

    With the test file alone, its rows are shuffled with `seed` and cut into train,
    valid and test by `fractions`. With the training file too, it is the training
    split, and the test file is cut in half, with `seed`, into valid and test (the
    shape of the MMoE paper's set-up); `fractions` is then not used.

    Raises FileNotFoundError naming the file and where to get it, and ValueError naming
    the file (and the line and column, where there is one) when it cannot be read (a
    corrupt or truncated .gz), when a line does not have UCI's 42 fields (a cut last
    line), or when a dense column or the income holds something else; and for
    `fractions` that are not three.
    """
    if isinstance(fractions, str) or len(tuple(fractions)) != 3:
        raise ValueError(
            f"fractions must be three (train, valid, test), got {fractions!r}"
        )
    directory = Path(directory)
    test_file = directory / FILES["test"]
    if not test_file.exists():
        raise FileNotFoundError(
            f"{test_file} is missing: download census-income.test.gz (and optionally "
            "census-income.data.gz) from the UCI Machine Learning Repository's "
            "'Census-Income (KDD)' page into that folder"
        )
    train_file = directory / FILES["train"]
    if train_file.exists():
        valid, test = split_frame(_read(test_file), (0.5, 0.5), seed)
        return CensusIncome(
            _read(train_file), valid, test, CENSUS_SCHEMA, (train_file, test_file)
        )
    train, valid, test = split_frame(_read(test_file), fractions, seed)
    return CensusIncome(train, valid, test, CENSUS_SCHEMA, (test_file,))


def _read(path: Path) -> pd.DataFrame:
    """One of UCI's files as a table of the schema's features and the two labels."""
    try:
        raw = pd.read_csv(
            path, header=None, skipinitialspace=True, dtype=str, keep_default_na=False
        )
    except (OSError, EOFError, ValueError, zlib.error) as error:  # gzip, CSV, text
        raise ValueError(
            f"{path} could not be read ({type(error).__name__}: {error}); expected "
            "UCI's gzip-compressed file, whole (download it again?)"
        ) from error
    if raw.shape[1] != len(CENSUS_COLUMNS):
        raise ValueError(
            f"{path}: expected UCI's {len(CENSUS_COLUMNS)} comma-separated columns, "
            f"found {raw.shape[1]}"
        )
    empty = (raw.isna() | (raw == "")).to_numpy()  # (rows, 42): UCI leaves none
    if empty.any():
        row, field = divmod(int(np.argmax(empty)), raw.shape[1])
        raise ValueError(
            f"{path}: line {row + 1}: field {field + 1} ({CENSUS_COLUMNS[field]}) is "
            "empty: a cut line (an interrupted download?), or not UCI's file"
        )
    raw.columns = list(CENSUS_COLUMNS)
    income = raw["income_50k"].str.rstrip(".")
    unknown = sorted(set(income) - {"50000+", "- 50000"})
    if unknown:
        raise ValueError(f"{path}: unexpected values in the income column: {unknown}")
    frame = raw[list(CENSUS_SCHEMA.categorical)].copy()
    for name in CENSUS_SCHEMA.dense:
        frame[name] = pd.to_numeric(raw[name], errors="coerce")
        text = frame[name].isna().to_numpy()
        if text.any():
            row = int(np.argmax(text))
            raise ValueError(
                f"{path}: line {row + 1}: the {name!r} column holds "
                f"{raw[name].iloc[row]!r}, not a number"
            )
    frame["income"] = (income == "50000+").astype("float32")
    frame["never_married"] = (raw["marital_stat"] == "Never married").astype("float32")
    return frame
