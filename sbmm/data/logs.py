"""Loaders for the public multi-task recommendation logs practitioners benchmark on.

Each loader reads a data set's published files from a folder the user downloaded
(nothing is downloaded here) and returns a table and the `Schema` that says which of
its columns are what, ready for `TableEncoder(schema).fit(train)`. Raw ids keep their
raw values (ints or strings); encoding them is the encoder's work. Labels come out as
floats: 0/1 for binary objectives, real for regression. A categorical value a row
lacks becomes `MISSING` (-1) in an integer column, the ids and codes of these data sets
being non-negative, and "" in a text column: a value of its own, as the encoder wants.
The tables keep columns the schemas leave out (timestamps, session ids, other
feedback), for splits, grouped metrics or a schema of one's own.

Nothing damaged is loaded quietly: a file whose last line is cut (an interrupted
download), an id or label that is empty or not a number, or a join key listed twice
with different values raises a ValueError naming the file, the line and the column or
key. A key listed twice with the same values is read once.

Ali-CCP (Alibaba Click and Conversion Prediction; `load_aliccp`)
    Impressions of the Taobao recommender, about 42 M in the training split and 43 M in
    the test split, with click and purchase labels and 23 categorical fields of user,
    item, user-item combination and position features. Paper: Ma et al., "Entire Space
    Multi-Task Model: An Effective Approach for Estimating Post-Click Conversion Rate",
    SIGIR 2018. Download: https://tianchi.aliyun.com/dataset/408 (with a Tianchi
    account; its use is governed by Tianchi's terms for data sets: research, read them
    there). Objectives: click, on every impression, and conversion given click,
    `Objective("conversion", given="click", space="entire")` as ESMM trains it (about
    0.02 % of impressions are purchases: trained on clicks alone it sees few).

KuaiRand (`load_kuairand`)
    The logs of Kuaishou's short-video feeds, with a dozen feedback signals per
    impression and, in a separate log, impressions of randomly exposed videos: an
    unbiased sample for evaluation. Three versions: KuaiRand-Pure (27 K users, the 7.6 K
    videos of the candidate pool, 1.4 M standard impressions), KuaiRand-1K (1 K users,
    11.7 M impressions) and KuaiRand-27K (322 M impressions). Paper: Gao et al.,
    "KuaiRand: An Unbiased Sequential Recommendation Dataset with Randomly Exposed
    Videos", CIKM 2022 (doi:10.1145/3511808.3557624). Download: https://kuairand.com
    (files at https://zenodo.org/records/10439422). Licence: CC BY-SA 4.0. Objectives:
    is_click, long_view, is_like, is_follow, is_comment, is_forward, is_hate (binary;
    all but the first two are rare) and play_time_ms (regression, with the video's
    duration_ms among the features); `tab`, the scene of the feed, is a feature, so
    one shared bottom can serve every scene.

AliExpress (`load_aliexpress`)
    Search logs of AliExpress in four countries (NL, ES, FR, US), one scenario each,
    with click and purchase labels, 16 categorical and 63 numerical features per
    impression. Paper: Li et al., "Improving Multi-Scenario Learning to Rank in
    E-commerce by Exploiting Task Relationships in the Label Space", CIKM 2020. Raw
    data: https://tianchi.aliyun.com/dataset/74690 (Tianchi's terms for data sets;
    provided "to facilitate any research" on learning to rank). The loader reads the
    `AliExpress_XX/train.csv` and `test.csv` files that MTReclib
    (https://github.com/easezyc/Multitask-Recommendation-Library) publishes, made from
    the raw data by its `data/preprocess.py`: the files of the PLE, AITM and MTReclib
    benchmarks. Objectives: click, and conversion given click trained on the entire
    space (what these benchmarks report as CTCVR); several countries loaded together
    add a `scenario` feature for a multi-scenario model.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from .encoding import Schema

__all__ = [
    "ALICCP_FIELDS",
    "ALICCP_MULTI_VALUED",
    "ALIEXPRESS_COUNTRIES",
    "KUAIRAND_VARIANTS",
    "MISSING",
    "load_aliccp",
    "load_aliexpress",
    "load_kuairand",
]

MISSING = -1  # an integer categorical value a row lacks

# --- Ali-CCP -------------------------------------------------------------------------

ALICCP_PAGE = "https://tianchi.aliyun.com/dataset/408"
ALICCP_FIELDS = {  # field id (the column name) → what it holds, as ESMM's paper lists
    "101": "user id",
    "109_14": "user's categories of the last 14 days' behaviour",
    "110_14": "user's shops of the last 14 days' behaviour",
    "127_14": "user's brands of the last 14 days' behaviour",
    "150_14": "user's intention nodes of the last 14 days' behaviour",
    "121": "user profile: categorical id",
    "122": "user profile: group id",
    "124": "user's gender",
    "125": "user's age",
    "126": "user's consumption level (type I)",
    "127": "user's consumption level (type II)",
    "128": "user's occupation (whether the user works)",
    "129": "user's geography",
    "205": "item id",
    "206": "item's category",
    "207": "item's shop",
    "210": "item's intention nodes",
    "216": "item's brand",
    "508": "user's behaviour on the item's category (109_14 × 206)",
    "509": "user's behaviour on the item's shop (110_14 × 207)",
    "702": "user's behaviour on the item's brand (127_14 × 216)",
    "853": "user's behaviour on the item's intention nodes (150_14 × 210)",
    "301": "position",
}
ALICCP_MULTI_VALUED = ("109_14", "110_14", "127_14", "150_14", "210", "853")
SKELETON_COLUMNS = (
    "sample_id",
    "click",
    "conversion",
    "common_feature_index",
    "feature_num",
    "feature_list",
)
COMMON_COLUMNS = ("common_feature_index", "feature_num", "feature_list")
FEATURE = re.compile(  # a feature of a feature list: field_id, feature_id (a value)
    "(?:^|(?<=\x01))([^\x01\x02]*)\x02([0-9]+)\x03[^\x01]*"
)


def load_aliccp(
    directory: str | os.PathLike,
    split: Literal["train", "test"] = "train",
    nrows: int | None = None,
) -> tuple[pd.DataFrame, Schema]:
    """Ali-CCP's `split`: the impressions of `sample_skeleton_{split}.csv`, each joined
    by its common_feature_index (an md5) to the user features of
    `common_features_{split}.csv`, both read from `directory`.

    The published files have no header; a line of the skeleton holds sample_id, click,
    buy, common_feature_index, feature_num and feature_list, a line of the common
    features common_feature_index, feature_num and feature_list. A feature_list joins
    its feature_num features with \\x01, each `field_id\\x02feature_id\\x03value`.

    nrows: read only the skeleton's first `nrows` lines (and the common features they
           use).

    Returns (frame, schema). The frame has a row per impression: sample_id; click and
    conversion (the file's buy), float 0/1; and a column per field of `ALICCP_FIELDS`,
    named by its id, holding feature ids: the field's first id (`MISSING` when the row
    lacks it) for single-valued fields, an int64 array of ids (maybe empty) for the
    fields of `ALICCP_MULTI_VALUED`. The features' values (1.0, or a log count of the
    user's behaviour) are dropped. Impressions with a conversion but no click, the few
    inconsistent ones, are dropped, as the preprocessing of AITM's and PaddleRec's
    ESMM examples drops them.
    """
    split = _split(split)
    rows = _positive(nrows)
    skeleton_path, common_path = _existing(
        directory,
        [f"sample_skeleton_{split}.csv", f"common_features_{split}.csv"],
        f"Ali-CCP ({ALICCP_PAGE})",
    )
    for path, columns in (
        (skeleton_path, SKELETON_COLUMNS),
        (common_path, COMMON_COLUMNS),
    ):
        _check_aliccp_line(path, columns)
        _check_last_line(path, len(columns))

    as_text = {"common_feature_index": "str", "feature_list": "str"}
    skeleton = _read_csv(
        skeleton_path, header=None, names=SKELETON_COLUMNS, dtype=as_text, nrows=rows
    )
    _check_values(skeleton, SKELETON_COLUMNS, skeleton_path, 1, text=as_text)
    skeleton = skeleton[~((skeleton["click"] == 0) & (skeleton["conversion"] == 1))]
    needed = set(skeleton["common_feature_index"])
    common: dict[str, dict[str, np.ndarray]] = {}  # md5 → {field: ids}
    lines: dict[str, int] = {}  # md5 → the line of the common features that gave them
    for chunk in _chunks(common_path, header=None, names=COMMON_COLUMNS, dtype=as_text):
        _check_values(chunk, COMMON_COLUMNS, common_path, 1, text=as_text)
        chunk = chunk[chunk["common_feature_index"].isin(needed)]
        for line, key, count, features in zip(
            chunk.index + 1, *(chunk[c] for c in COMMON_COLUMNS)
        ):
            fields = _aliccp_features(features, count, common_path, key)
            ids = {f: np.array(v, np.int64) for f, v in fields.items()}
            if key in common and not _same_ids(common[key], ids):
                raise ValueError(
                    f"{common_path}: common_feature_index {key!r} is listed on lines "
                    f"{lines[key]} and {line} with different features; which one an "
                    "impression has is unknown"
                )
            common.setdefault(key, ids)
            lines.setdefault(key, line)
    absent = needed - common.keys()
    if absent:
        raise ValueError(
            f"{skeleton_path} refers to {len(absent)} common_feature_index values that "
            f"{common_path} lacks (e.g. {min(absent)!r}); are both files of the "
            f"{split!r} split, complete and unmodified?"
        )

    n = len(skeleton)
    singles = {
        f: np.full(n, MISSING, np.int64)
        for f in ALICCP_FIELDS
        if f not in ALICCP_MULTI_VALUED
    }
    multiples = {f: np.empty(n, object) for f in ALICCP_MULTI_VALUED}
    empty = np.array([], np.int64)
    for i, (sample, key, count, features) in enumerate(
        zip(*(skeleton[c] for c in ("sample_id", *COMMON_COLUMNS)))
    ):
        own = _aliccp_features(features, count, skeleton_path, sample)
        shared = common[key]
        for field in ALICCP_MULTI_VALUED:
            ids = own.get(field)
            user = shared.get(field, empty)
            multiples[field][i] = (
                user if ids is None else np.append(np.array(ids, np.int64), user)
            )
        for fields in (shared, own):  # the impression's own ids win
            for field, ids in fields.items():
                if field in singles:
                    singles[field][i] = int(ids[0])
    columns = {**singles, **multiples}
    frame = pd.DataFrame(
        {
            "sample_id": skeleton["sample_id"].to_numpy(),
            "click": skeleton["click"].to_numpy(np.float64),
            "conversion": skeleton["conversion"].to_numpy(np.float64),
            **{f: columns[f] for f in ALICCP_FIELDS},
        }
    )
    schema = Schema(
        categorical=tuple(f for f in ALICCP_FIELDS if f not in ALICCP_MULTI_VALUED),
        multi_valued=ALICCP_MULTI_VALUED,
        labels=("click", "conversion"),
    )
    return frame, schema


def _check_aliccp_line(path: Path, columns: Sequence[str]) -> None:
    """Refuse a headerless Ali-CCP file whose first line is not `columns`,
    comma-separated, ending in a feature list."""
    with open(path, encoding="utf-8", errors="replace") as f:
        line = f.readline().rstrip("\n")
    found = line.split(",")
    if len(found) != len(columns) or "\x02" not in found[-1] or "\x03" not in found[-1]:
        raise ValueError(
            f"{path}: its first line has {len(found)} comma-separated fields "
            f"({line[:80]!r}...), but the published format has {len(columns)} and no "
            f"header: {', '.join(columns)}, the last a feature list of "
            "field_id\\x02feature_id\\x03value joined by \\x01"
        )


def _aliccp_features(
    text: str, count: int, path: Path, key: object
) -> dict[str, list[str]]:
    """The feature ids (digit strings) of an Ali-CCP feature_list by field,
    {field_id: [ids]}; a ValueError naming `path` and the row `key` if the list is not
    `count` well-formed features."""
    features = FEATURE.findall(text)  # [(field_id, feature_id)]
    if len(features) != count or text.count("\x01") + 1 != count:
        parts = text.split("\x01")
        bad = [p for p in parts if not FEATURE.fullmatch(p)]
        raise ValueError(
            f"{path}: row {key} declares feature_num {count}; its feature_list holds "
            f"{len(parts)} features separated by \\x01"
            + (f", {bad[0]!r} not field_id\\x02feature_id\\x03value" if bad else "")
        )
    out: dict[str, list[str]] = {}
    for field, feature_id in features:
        out.setdefault(field, []).append(feature_id)
    return out


# --- KuaiRand ------------------------------------------------------------------------

KUAIRAND_PAGE = "https://kuairand.com"
KUAIRAND_VARIANTS = ("pure", "1k", "27k")  # the file names' suffixes
KUAIRAND_LOG_COLUMNS = (
    "user_id",
    "video_id",
    "date",
    "hourmin",
    "time_ms",
    "is_click",
    "is_like",
    "is_follow",
    "is_comment",
    "is_forward",
    "is_hate",
    "long_view",
    "play_time_ms",
    "duration_ms",
    "profile_stay_time",
    "comment_stay_time",
    "is_profile_enter",
    "is_rand",
    "tab",
)
KUAIRAND_USER_TEXT = (
    "user_active_degree",
    "follow_user_num_range",
    "fans_user_num_range",
    "friend_user_num_range",
    "register_days_range",
)
KUAIRAND_USER_CODES = (
    "is_lowactive_period",
    "is_live_streamer",
    "is_video_author",
    *(f"onehot_feat{i}" for i in range(18)),
)
KUAIRAND_USER_COLUMNS = (
    "user_id",
    *KUAIRAND_USER_TEXT,
    *KUAIRAND_USER_CODES,
    "follow_user_num",
    "fans_user_num",
    "friend_user_num",
    "register_days",
)
KUAIRAND_VIDEO_TEXT = ("video_type", "upload_dt", "upload_type", "tag")
KUAIRAND_VIDEO_COLUMNS = (
    "video_id",
    "author_id",
    *KUAIRAND_VIDEO_TEXT,
    "visible_status",
    "video_duration",
    "server_width",
    "server_height",
    "music_id",
    "music_type",
)
KUAIRAND_LABELS = (
    "is_click",
    "long_view",
    "is_like",
    "is_follow",
    "is_comment",
    "is_forward",
    "is_hate",
    "play_time_ms",
)


def load_kuairand(
    directory: str | os.PathLike,
    variant: Literal["pure", "1k", "27k"] = "pure",
    log: Literal["standard", "random"] = "standard",
    nrows: int | None = None,
) -> tuple[pd.DataFrame, Schema]:
    """KuaiRand's impressions, joined on user_id to `user_features_{variant}.csv` and
    on video_id to `video_features_basic_{variant}.csv`.

    directory: the version's folder (KuaiRand-Pure, ...) or its `data` folder.
    variant:   "pure", "1k" or "27k", the suffix of the version's file names.
    log:       "standard", the impressions of the feeds' recommendations
               (`log_standard_*_{variant}*.csv`: two periods, 4/08-4/21 and 4/22-5/08,
               in two parts each for 27k, read in that order), or "random", those of
               randomly exposed videos (`log_random_4_22_to_5_08_{variant}.csv`), an
               unbiased sample for evaluation.
    nrows:     read only the first `nrows` impressions, in that order.

    Returns (frame, schema). The frame has the logs' columns (ids as ints, the labels
    of `KUAIRAND_LABELS` as floats) followed by the user's and the video's; `tag`, a
    video's comma-separated categories in the file, holds an int64 array of them (maybe
    empty); missing feature values are filled as the module says. The schema's features
    are the ids, the scene (`tab`), the user's codes and bucketed counts (its raw
    counts, heavy-tailed, stay in the frame), the video's author, type, upload type,
    visibility, size, music and tags, and the impression's duration_ms (dense).
    """
    if variant not in KUAIRAND_VARIANTS:
        raise ValueError(f"variant must be one of {KUAIRAND_VARIANTS}, got {variant!r}")
    if log not in ("standard", "random"):
        raise ValueError(f"log must be 'standard' or 'random', got {log!r}")
    rows = _positive(nrows)
    source = f"KuaiRand ({KUAIRAND_PAGE})"
    root = Path(directory)
    if (root / "data").is_dir():
        root = root / "data"
    pattern = f"log_{log}_*_{variant}*.csv"
    logs = sorted(root.glob(pattern)) if root.is_dir() else []
    users_path, videos_path = _existing(
        root,
        [f"user_features_{variant}.csv", f"video_features_basic_{variant}.csv"],
        source,
    )
    if not logs:
        raise FileNotFoundError(
            f"{root} holds no {pattern}, the {log} log of KuaiRand-{variant}: "
            f"download the data set from {source} and pass its folder"
        )
    for path in logs:
        _check_header(path, KUAIRAND_LOG_COLUMNS)
    _check_header(users_path, KUAIRAND_USER_COLUMNS)
    _check_header(videos_path, KUAIRAND_VIDEO_COLUMNS)
    for path in (*logs, users_path, videos_path):
        _check_last_line(path)

    parts = []
    for path in logs:
        part = _read_csv(path, usecols=list(KUAIRAND_LOG_COLUMNS), nrows=rows)
        _check_values(part, KUAIRAND_LOG_COLUMNS, path, first_line=2)
        parts.append(part)
        if rows is not None:
            rows -= len(part)
            if rows == 0:
                break
    frame = pd.concat(parts, ignore_index=True)
    frame[list(KUAIRAND_LABELS)] = frame[list(KUAIRAND_LABELS)].astype(np.float64)

    users = _read_csv(
        users_path,
        usecols=list(KUAIRAND_USER_COLUMNS),
        dtype=dict.fromkeys(KUAIRAND_USER_TEXT, "str"),
    )
    _check_values(users, ("user_id",), users_path, first_line=2)
    users = _unique_rows(users, "user_id", users_path)
    seen = frame["video_id"].unique()
    videos = []
    for chunk in _chunks(
        videos_path,
        usecols=list(KUAIRAND_VIDEO_COLUMNS),
        dtype=dict.fromkeys(KUAIRAND_VIDEO_TEXT, "str"),
    ):
        _check_values(chunk, ("video_id",), videos_path, first_line=2)
        videos.append(chunk[chunk["video_id"].isin(seen)])
    videos = _unique_rows(pd.concat(videos), "video_id", videos_path)
    frame = frame.merge(users, on="user_id", how="left", validate="many_to_one")
    frame = frame.merge(videos, on="video_id", how="left", validate="many_to_one")

    categorical = (
        "user_id",
        "video_id",
        "tab",
        *KUAIRAND_USER_TEXT,
        *KUAIRAND_USER_CODES,
        "author_id",
        "video_type",
        "upload_type",
        "visible_status",
        "server_width",
        "server_height",
        "music_id",
        "music_type",
    )
    for name in categorical:
        frame[name] = _filled(frame[name])
    frame["tag"] = _tags(frame["tag"], videos_path)
    schema = Schema(
        categorical=categorical,
        dense=("duration_ms",),
        multi_valued=("tag",),
        labels=KUAIRAND_LABELS,
    )
    return frame, schema


def _tags(column: pd.Series, path: Path) -> pd.Series:
    """KuaiRand's tag cells ("12,65", or missing) as int64 arrays of the tag ids; a
    text is parsed once, its array shared by every row that holds it."""
    text = column.fillna("")
    arrays = {}
    for value in text.unique():
        parts = value.split(",") if value else []
        if not all(p.strip().isdigit() for p in parts):
            raise ValueError(
                f"{path}: the tag {value!r} is not a comma-separated list of tag ids"
            )
        arrays[value] = np.array(parts, np.int64)
    return pd.Series([arrays[v] for v in text], index=column.index, dtype=object)


# --- AliExpress ----------------------------------------------------------------------

ALIEXPRESS_PAGE = "https://tianchi.aliyun.com/dataset/74690"
MTRECLIB_PAGE = "https://github.com/easezyc/Multitask-Recommendation-Library"
ALIEXPRESS_COUNTRIES = ("NL", "ES", "FR", "US")
ALIEXPRESS_CATEGORICAL = tuple(f"categorical_{i}" for i in range(1, 17))
ALIEXPRESS_NUMERICAL = tuple(f"numerical_{i}" for i in range(1, 64))
ALIEXPRESS_COLUMNS = (
    "search_id",
    *ALIEXPRESS_CATEGORICAL,
    *ALIEXPRESS_NUMERICAL,
    "click",
    "conversion",
)


def load_aliexpress(
    directory: str | os.PathLike,
    countries: str | Iterable[str] = ("NL",),
    split: Literal["train", "test"] = "train",
    nrows: int | None = None,
) -> tuple[pd.DataFrame, Schema]:
    """AliExpress's `split` in `countries` (of NL, ES, FR, US): the files
    `AliExpress_{country}/{split}.csv` under `directory`, each comma-separated with a
    header: search_id, categorical_1..16, numerical_1..63, click, conversion.

    nrows: read only the first `nrows` impressions of each country.

    Returns (frame, schema). The frame has a row per impression, the countries' rows in
    the order given: `scenario`, the country code; search_id (the search whose result
    page showed the item: a key for per-query metrics, not a feature); the categorical
    codes (ints); the numerical features; click and conversion, float 0/1. The schema's
    features are the categorical codes, with `scenario` when there are several
    countries, and the numerical features (dense).
    """
    chosen = (countries,) if isinstance(countries, str) else tuple(countries)
    wrong = [c for c in chosen if c not in ALIEXPRESS_COUNTRIES]
    if not chosen or wrong or len(set(chosen)) != len(chosen):
        raise ValueError(
            f"countries must be distinct codes of {ALIEXPRESS_COUNTRIES}, "
            f"got {chosen!r}"
        )
    rows = _positive(nrows)
    paths = _existing(
        directory,
        [f"AliExpress_{c}/{_split(split)}.csv" for c in chosen],
        f"AliExpress (MTReclib's processed files: {MTRECLIB_PAGE}, made from "
        f"{ALIEXPRESS_PAGE} by its data/preprocess.py)",
    )
    for path in paths:
        _check_header(path, ALIEXPRESS_COLUMNS)
        _check_last_line(path)

    dtypes = {
        **dict.fromkeys(("search_id", *ALIEXPRESS_CATEGORICAL), "int64"),
        **dict.fromkeys((*ALIEXPRESS_NUMERICAL, "click", "conversion"), "float64"),
    }
    parts = []
    for country, path in zip(chosen, paths):
        part = _read_csv(path, usecols=list(ALIEXPRESS_COLUMNS), nrows=rows)
        _check_values(part, ALIEXPRESS_COLUMNS, path, first_line=2)
        part = part.astype(dtypes)
        part.insert(0, "scenario", country)
        parts.append(part[["scenario", *ALIEXPRESS_COLUMNS]])
    frame = pd.concat(parts, ignore_index=True)
    scenario = ("scenario",) if len(chosen) > 1 else ()
    schema = Schema(
        categorical=(*scenario, *ALIEXPRESS_CATEGORICAL),
        dense=ALIEXPRESS_NUMERICAL,
        labels=("click", "conversion"),
    )
    return frame, schema


# --- Shared --------------------------------------------------------------------------


def _split(split: str) -> str:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split


def _positive(nrows: int | None) -> int | None:
    if nrows is not None and not (
        isinstance(nrows, int) and not isinstance(nrows, bool) and nrows > 0
    ):
        raise ValueError(f"nrows must be a positive integer or None, got {nrows!r}")
    return nrows


def _existing(
    directory: str | os.PathLike, names: Sequence[str], source: str
) -> list[Path]:
    """The files `names` under `directory`; a FileNotFoundError naming the first one
    missing and where the data set comes from."""
    root = Path(directory)
    for name in names:
        if not (root / name).is_file():
            where = "" if root.is_dir() else f" (the folder {root} does not exist)"
            raise FileNotFoundError(
                f"{root / name} not found{where}: download {source} and pass the "
                f"folder that holds {', '.join(names)}"
            )
    return [root / name for name in names]


def _check_header(path: Path, columns: Sequence[str]) -> None:
    """Refuse a CSV file whose header lacks one of `columns`, naming the file and the
    columns found and expected."""
    found = list(_read_csv(path, nrows=0).columns)
    missing = [c for c in columns if c not in found]
    if missing:
        hint = " (is it comma-separated?)" if len(found) == 1 else ""
        raise ValueError(
            f"{path}: its header has the columns {found}{hint}, but the published "
            f"format has {list(columns)}; missing: {missing}"
        )


def _read_csv(path: Path, **options):
    """pandas.read_csv, its parsing and reading errors naming the file."""
    try:
        return pd.read_csv(path, **options)
    except (OSError, EOFError, ValueError) as error:  # ParserError is a ValueError
        raise ValueError(f"{path}: {error}") from error


def _chunks(path: Path, size: int = 1_000_000, **options):
    """pandas.read_csv in chunks of `size` rows, its parsing and reading errors
    naming the file."""
    try:
        yield from pd.read_csv(path, chunksize=size, **options)
    except (OSError, EOFError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from error


def _check_last_line(path: Path, fields: int | None = None, block: int = 1 << 20):
    """Refuse a CSV file whose last line has another number of fields than `fields`
    (by default, its header's): a line cut by an interrupted download or copy. A last
    line longer than `block` bytes is not judged."""
    with open(path, "rb") as f:
        if fields is None:
            fields = len(next(csv.reader([f.readline().decode("utf-8", "replace")])))
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - block))
        lines = f.read().rstrip(b"\r\n").split(b"\n")
    if len(lines) < 2 and size > block:
        return
    last = lines[-1].decode("utf-8", "replace")
    found = len(next(csv.reader([last]), []))
    if found != fields:
        raise ValueError(
            f"{path}: its last line has {found} comma-separated fields where the file "
            f"has {fields} ({last[:80]!r}): a line cut short (an interrupted download "
            "or copy?); download the file again"
        )


def _check_values(
    table: pd.DataFrame,
    columns: Iterable[str],
    path: Path,
    first_line: int,
    text: Sequence[str] = (),
) -> None:
    """Refuse an empty value, or text, in `columns` of `table` (numbers, ids and
    labels that every row of the published files has), naming `path`, the line (row
    label + `first_line`) and the column; the columns of `text` hold text, and are only
    checked for empty values."""
    for name in columns:
        column = table[name]
        empty = column.isna().to_numpy()
        if empty.any():
            line = table.index[int(np.argmax(empty))] + first_line
            raise ValueError(
                f"{path}: line {line}: the {name!r} column is empty (a line cut short "
                "or damaged?)"
            )
        if name not in text and not pd.api.types.is_numeric_dtype(column):
            text = pd.to_numeric(column, errors="coerce").isna().to_numpy()
            row = int(np.argmax(text))
            raise ValueError(
                f"{path}: line {table.index[row] + first_line}: the {name!r} column "
                f"holds {column.iloc[row]!r}, not a number"
            )


def _unique_rows(table: pd.DataFrame, key: str, path: Path) -> pd.DataFrame:
    """`table` with rows listed twice read once; a ValueError naming `path`, the key
    and its lines (header: line 1) when a key is listed twice with different values."""
    table = table.drop_duplicates()
    twice = table[key].duplicated(keep=False).to_numpy()
    if twice.any():
        value = table[key][twice].tolist()[0]  # a Python int or str, to name
        lines = (table.index[(table[key] == value).to_numpy()] + 2).tolist()
        raise ValueError(
            f"{path}: {key} {value!r} is listed on lines {lines} with different "
            "values; which one its rows join is unknown"
        )
    return table


def _same_ids(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    """Whether two {field: ids} of Ali-CCP hold the same ids."""
    return a.keys() == b.keys() and all(np.array_equal(a[f], b[f]) for f in a)


def _filled(column: pd.Series) -> pd.Series:
    """A categorical column with its missing values filled: `MISSING` in a numeric
    column (then int64), "" in a text one."""
    if pd.api.types.is_numeric_dtype(column):
        return column.fillna(MISSING).astype(np.int64)
    return column.fillna("")
