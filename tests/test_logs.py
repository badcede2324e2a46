"""The loaders of public logs, each on a tiny data set written in its published format:
columns, types, joins, multi-valued fields, nrows, and the errors before any work."""

import numpy as np
import pandas as pd
import pytest

from sbmm.data.encoding import Schema, TableEncoder
from sbmm.data.logs import (
    ALICCP_FIELDS,
    ALICCP_MULTI_VALUED,
    MISSING,
    load_aliccp,
    load_aliexpress,
    load_kuairand,
)

# --- Ali-CCP: headerless, comma-separated; field_id\x02feature_id\x03value, by \x01


def feature_list(*features: tuple[str, int, float]) -> str:
    return "\x01".join(f"{field}\x02{id_}\x03{value}" for field, id_, value in features)


def write_aliccp(directory, split="train", skeleton_sep=","):
    user_a = [  # the common features of a request: the user's
        ("101", 11, 1.0),
        ("121", 3438658, 1.0),
        ("124", 3438769, 1.0),
        ("109_14", 450954, 0.69315),
        ("109_14", 450877, 1.09861),
        ("150_14", 3898063, 3.37304),
    ]
    user_b = [("101", 12, 1.0), ("109_14", 450954, 2.07944)]
    common = [
        ("d5f794198192a713", user_a),
        ("5ab1af84e729a269", user_b),
        ("023a8f5b7b8a3348", [("101", 13, 1.0)]),  # no impression uses it
    ]
    impressions = [  # sample_id, click, buy, md5, the impression's features
        (
            1,
            1,
            1,
            "d5f794198192a713",
            [
                ("205", 5565071, 1.0),
                ("206", 8316799, 1.0),
                ("210", 9029962, 1.0),
                ("210", 9090457, 1.0),
                ("508", 9355077, 0.69315),
                ("853", 9900001, 0.5),
                ("301", 9351666, 1.0),
            ],
        ),
        (2, 0, 0, "5ab1af84e729a269", [("205", 5565072, 1.0), ("210", 9062351, 1.0)]),
        (3, 0, 1, "d5f794198192a713", [("205", 5565073, 1.0)]),  # buy without click
        (4, 1, 0, "d5f794198192a713", [("205", 5565071, 1.0), ("301", 9351667, 1.0)]),
    ]
    with open(directory / f"sample_skeleton_{split}.csv", "w") as f:
        for sample, click, buy, md5, features in impressions:
            fields = [sample, click, buy, md5, len(features), feature_list(*features)]
            f.write(skeleton_sep.join(map(str, fields)) + "\n")
    with open(directory / f"common_features_{split}.csv", "w") as f:
        for md5, features in common:
            f.write(f"{md5},{len(features)},{feature_list(*features)}\n")


def test_aliccp_parses_fields_joins_common_features_and_drops_buy_without_click(
    tmp_path,
):
    write_aliccp(tmp_path)
    frame, schema = load_aliccp(tmp_path)

    assert list(frame.columns) == ["sample_id", "click", "conversion", *ALICCP_FIELDS]
    assert frame["sample_id"].tolist() == [1, 2, 4]
    assert frame["click"].dtype == frame["conversion"].dtype == np.float64
    assert frame["click"].tolist() == [1.0, 0.0, 1.0]
    assert frame["conversion"].tolist() == [1.0, 0.0, 0.0]
    # single-valued fields: the id, or MISSING where the row lacks the field
    assert frame["101"].tolist() == [11, 12, 11]  # from the common features, by md5
    assert frame["124"].tolist() == [3438769, MISSING, 3438769]
    assert frame["205"].tolist() == [5565071, 5565072, 5565071]
    assert frame["301"].tolist() == [9351666, MISSING, 9351667]
    assert frame["508"].tolist() == [9355077, MISSING, MISSING]
    assert frame["205"].dtype == np.int64
    # multi-valued fields: every id, in order; an empty array where none
    assert frame["210"].map(list).tolist() == [[9029962, 9090457], [9062351], []]
    assert frame["109_14"].map(list).tolist() == [
        [450954, 450877],
        [450954],
        [450954, 450877],
    ]
    assert frame["853"].map(list).tolist() == [[9900001], [], []]
    assert frame["150_14"].map(list).tolist() == [[3898063], [], [3898063]]

    assert schema == Schema(
        categorical=tuple(f for f in ALICCP_FIELDS if f not in ALICCP_MULTI_VALUED),
        multi_valued=ALICCP_MULTI_VALUED,
        labels=("click", "conversion"),
    )


def test_aliccp_nrows_and_split(tmp_path):
    write_aliccp(tmp_path, split="test")
    frame, _ = load_aliccp(tmp_path, split="test", nrows=2)
    assert frame["sample_id"].tolist() == [1, 2]
    with pytest.raises(ValueError, match="split must be"):
        load_aliccp(tmp_path, split="valid")
    with pytest.raises(ValueError, match="nrows must be a positive integer"):
        load_aliccp(tmp_path, split="test", nrows=0)


def test_aliccp_refuses_missing_files_and_wrong_formats(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_aliccp(tmp_path / "nowhere")
    message = str(error.value)
    assert "sample_skeleton_train.csv" in message
    assert "https://tianchi.aliyun.com/dataset/408" in message
    assert "does not exist" in message

    write_aliccp(tmp_path, skeleton_sep="\t")
    with pytest.raises(ValueError) as error:
        load_aliccp(tmp_path)
    message = str(error.value)
    assert "sample_skeleton_train.csv" in message and "1 comma-separated" in message
    assert "has 6" in message

    write_aliccp(tmp_path)
    path = tmp_path / "common_features_train.csv"
    path.write_text(
        path.read_text().replace("d5f794198192a713,6,", "d5f794198192a713,5,")
    )
    with pytest.raises(
        ValueError,
        match="common_features_train.csv: row d5f794198192a713 declares feature_num 5",
    ):
        load_aliccp(tmp_path)


def test_aliccp_refuses_a_malformed_feature(tmp_path):
    write_aliccp(tmp_path)
    path = tmp_path / "sample_skeleton_train.csv"
    path.write_text(path.read_text().replace("205\x025565072\x031.0", "205:5565072"))
    with pytest.raises(ValueError) as error:
        load_aliccp(tmp_path)
    message = str(error.value)
    assert "sample_skeleton_train.csv: row 2 declares feature_num 2" in message
    assert "'205:5565072' not field_id" in message


def test_aliccp_refuses_an_impression_whose_common_features_are_absent(tmp_path):
    write_aliccp(tmp_path)
    path = tmp_path / "common_features_train.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[1:]))  # drop the user of impressions 1, 3 and 4
    with pytest.raises(ValueError, match="refers to 1 common_feature_index values"):
        load_aliccp(tmp_path)


# --- KuaiRand: comma-separated with a header; logs, user and video features

LOG_COLUMNS = [  # as KuaiRand's README lists them
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
]


def log_row(user, video, click, play_time_ms, tab=1):
    values = dict.fromkeys(LOG_COLUMNS, 0)
    values.update(
        user_id=user,
        video_id=video,
        date=20220421,
        hourmin=400,
        time_ms=1650485801301,
        is_click=click,
        long_view=int(play_time_ms > 18000),
        play_time_ms=play_time_ms,
        duration_ms=104400,
        tab=tab,
    )
    return values


def write_kuairand(directory, variant="pure"):
    data = directory / f"KuaiRand-{variant.capitalize()}" / "data"
    data.mkdir(parents=True)
    logs = {
        "log_standard_4_08_to_4_21": [log_row(0, 10, 1, 151024), log_row(1, 11, 0, 0)],
        "log_standard_4_22_to_5_08": [
            log_row(1, 12, 1, 5000),
            log_row(0, 99, 1, 20000),
        ],
        "log_random_4_22_to_5_08": [log_row(1, 10, 0, 300, tab=4)],
    }
    for name, rows in logs.items():
        path = data / f"{name}_{variant}.csv"
        pd.DataFrame(rows, columns=LOG_COLUMNS).to_csv(path, index=False)
    users = pd.DataFrame(
        {
            "user_id": [0, 1],
            "user_active_degree": ["full_active", "UNKNOWN"],
            "is_lowactive_period": [0, 1],
            "is_live_streamer": [0, 0],
            "is_video_author": [1, 0],
            "follow_user_num": [5, 0],
            "follow_user_num_range": ["(0,10]", "0"],
            "fans_user_num": [312, 0],
            "fans_user_num_range": ["[100,1k)", "0"],
            "friend_user_num": [0, 2],
            "friend_user_num_range": ["0", "[1,5)"],
            "register_days": [3624, 20],
            "register_days_range": ["730+", "15-30"],
            **{f"onehot_feat{i}": [i % 2, i % 3] for i in range(18)},
        }
    )
    users.to_csv(data / f"user_features_{variant}.csv", index=False)
    videos = pd.DataFrame(  # video 99 of the logs has no features
        {
            "video_id": [10, 11, 12],
            "author_id": [441, 7, 441],
            "video_type": ["NORMAL", "AD", "NORMAL"],
            "upload_dt": ["2020-07-08", "2022-04-01", "2022-04-02"],
            "upload_type": ["ShortImport", "LongImport", "ShortImport"],
            "visible_status": [1, 1, 0],
            "video_duration": [104400.0, 17200.0, None],
            "server_width": [720, 1080, 720],
            "server_height": [1280, 1920, 1280],
            "music_id": [989206467, 0, 12],
            "music_type": [4.0, None, 9.0],
            "tag": ["12,65", "3", None],
        }
    )
    videos.to_csv(data / f"video_features_basic_{variant}.csv", index=False)
    return data


def test_kuairand_joins_user_and_video_features_and_reads_logs_in_order(tmp_path):
    data = write_kuairand(tmp_path)
    frame, schema = load_kuairand(data.parent)  # the version's folder

    assert frame["video_id"].tolist() == [10, 11, 12, 99]
    assert frame["user_id"].tolist() == [0, 1, 1, 0]
    for name in schema.labels:
        assert frame[name].dtype == np.float64, name
    assert frame["is_click"].tolist() == [1.0, 0.0, 1.0, 1.0]
    assert frame["play_time_ms"].tolist() == [151024.0, 0.0, 5000.0, 20000.0]
    assert frame["long_view"].tolist() == [1.0, 0.0, 0.0, 1.0]
    # the user's features, by user_id
    assert frame["user_active_degree"].tolist() == [
        "full_active",
        "UNKNOWN",
        "UNKNOWN",
        "full_active",
    ]
    assert frame["friend_user_num_range"].tolist() == ["0", "[1,5)", "[1,5)", "0"]
    assert frame["onehot_feat5"].tolist() == [1, 2, 2, 1]
    # the video's, by video_id; video 99 has none: MISSING, "" and no tags
    assert frame["author_id"].tolist() == [441, 7, 441, MISSING]
    assert frame["music_type"].tolist() == [4, MISSING, 9, MISSING]
    assert frame["music_type"].dtype == np.int64
    assert frame["upload_type"].tolist() == [
        "ShortImport",
        "LongImport",
        "ShortImport",
        "",
    ]
    assert frame["tag"].map(list).tolist() == [[12, 65], [3], [], []]

    assert schema.labels == (
        "is_click",
        "long_view",
        "is_like",
        "is_follow",
        "is_comment",
        "is_forward",
        "is_hate",
        "play_time_ms",
    )
    assert schema.dense == ("duration_ms",) and schema.multi_valued == ("tag",)
    assert {"user_id", "video_id", "tab", "author_id"} <= set(schema.categorical)
    assert set(schema.features) <= set(frame.columns)


def test_kuairand_random_log_and_nrows_across_files(tmp_path):
    data = write_kuairand(tmp_path)
    frame, _ = load_kuairand(data, log="random")  # the data folder itself
    assert frame["video_id"].tolist() == [10] and frame["tab"].tolist() == [4]
    frame, _ = load_kuairand(data, nrows=3)
    assert frame["video_id"].tolist() == [10, 11, 12]
    frame, _ = load_kuairand(data, nrows=1)
    assert frame["video_id"].tolist() == [10]


def test_kuairand_refuses_missing_files_and_wrong_headers(tmp_path):
    data = write_kuairand(tmp_path)
    with pytest.raises(FileNotFoundError) as error:
        load_kuairand(data, variant="1k")
    assert "user_features_1k.csv" in str(error.value)
    assert "https://kuairand.com" in str(error.value)
    with pytest.raises(ValueError, match="variant must be one of"):
        load_kuairand(data, variant="2k")

    path = data / "user_features_pure.csv"
    users = pd.read_csv(path).rename(columns={"register_days": "days"})
    users.to_csv(path, index=False)
    with pytest.raises(ValueError) as error:
        load_kuairand(data)
    assert "user_features_pure.csv" in str(error.value)
    assert "missing: ['register_days']" in str(error.value)

    path = data / "log_standard_4_08_to_4_21_pure.csv"
    pd.read_csv(path).to_csv(path, index=False, sep="\t")
    with pytest.raises(ValueError, match="comma-separated") as error:
        load_kuairand(data)
    assert "log_standard_4_08_to_4_21_pure.csv" in str(error.value)

    for path in data.glob("log_standard_*"):
        path.unlink()
    with pytest.raises(FileNotFoundError, match=r"log_standard_\*_pure\*\.csv"):
        load_kuairand(data)


# --- AliExpress: MTReclib's AliExpress_XX/{train,test}.csv, comma-separated, header

CATEGORICAL = [f"categorical_{i}" for i in range(1, 17)]
NUMERICAL = [f"numerical_{i}" for i in range(1, 64)]


def write_aliexpress(directory, country, rows, split="train"):
    rng = np.random.default_rng(len(country) + rows)
    table = pd.DataFrame(
        {
            "search_id": np.arange(rows) + 30,
            **{c: rng.integers(0, 50, rows) for c in CATEGORICAL},
            **{c: rng.random(rows).round(4) for c in NUMERICAL},
            "click": [1, 1, 0, 0, 0][:rows],
            "conversion": [1, 0, 0, 0, 0][:rows],
        }
    )
    folder = directory / f"AliExpress_{country}"
    folder.mkdir(exist_ok=True)
    table.to_csv(folder / f"{split}.csv", index=False)
    return table


def test_aliexpress_one_and_several_countries(tmp_path):
    nl = write_aliexpress(tmp_path, "NL", 3)
    es = write_aliexpress(tmp_path, "ES", 5)

    frame, schema = load_aliexpress(tmp_path, "NL")
    published = ["search_id", *CATEGORICAL, *NUMERICAL, "click", "conversion"]
    assert list(frame.columns) == ["scenario", *published]
    assert frame["scenario"].tolist() == ["NL"] * 3
    assert frame["categorical_7"].dtype == np.int64
    assert frame["categorical_7"].tolist() == nl["categorical_7"].tolist()
    np.testing.assert_allclose(frame["numerical_63"], nl["numerical_63"])
    assert frame["click"].dtype == np.float64
    assert frame["conversion"].tolist() == [1.0, 0.0, 0.0]
    assert schema == Schema(
        categorical=tuple(CATEGORICAL),
        dense=tuple(NUMERICAL),
        labels=("click", "conversion"),
    )

    frame, schema = load_aliexpress(tmp_path, ("ES", "NL"), nrows=4)
    assert frame["scenario"].tolist() == ["ES"] * 4 + ["NL"] * 3
    assert frame["search_id"].tolist() == [30, 31, 32, 33, 30, 31, 32]
    assert frame["categorical_1"].tolist()[:4] == es["categorical_1"].tolist()[:4]
    assert schema.categorical == ("scenario", *CATEGORICAL)


def test_aliexpress_refuses_missing_files_wrong_headers_and_countries(tmp_path):
    write_aliexpress(tmp_path, "NL", 3)
    with pytest.raises(FileNotFoundError) as error:
        load_aliexpress(tmp_path, ("NL", "FR"))
    message = str(error.value)
    assert "AliExpress_FR/train.csv" in message
    assert "Multitask-Recommendation-Library" in message
    assert "https://tianchi.aliyun.com/dataset/74690" in message
    with pytest.raises(FileNotFoundError, match="test.csv"):
        load_aliexpress(tmp_path, split="test")
    with pytest.raises(ValueError, match="countries must be distinct codes"):
        load_aliexpress(tmp_path, ("NL", "RU"))
    with pytest.raises(ValueError, match="countries must be distinct codes"):
        load_aliexpress(tmp_path, ("NL", "NL"))

    path = tmp_path / "AliExpress_NL" / "train.csv"
    pd.read_csv(path).drop(columns="numerical_40").to_csv(path, index=False)
    with pytest.raises(ValueError) as error:
        load_aliexpress(tmp_path)
    assert "train.csv" in str(error.value)
    assert "missing: ['numerical_40']" in str(error.value)


# --- Every loader's table and schema go through the encoder as they are


def test_every_loader_output_encodes_into_a_batch(tmp_path):
    (tmp_path / "ccp").mkdir()
    write_aliccp(tmp_path / "ccp")
    write_kuairand(tmp_path / "kuairand")
    write_aliexpress(tmp_path, "NL", 3)
    write_aliexpress(tmp_path, "US", 2)
    for frame, schema in (
        load_aliccp(tmp_path / "ccp"),
        load_kuairand(tmp_path / "kuairand" / "KuaiRand-Pure"),
        load_aliexpress(tmp_path, ("NL", "US")),
    ):
        batch = TableEncoder(schema).fit_transform(frame)
        assert len(batch) == len(frame)
        assert set(batch.labels) == set(schema.labels)
        assert set(batch.features) == set(schema.features)


# --- Damaged files: a cut line, text or nothing where a number belongs, a key twice


def cut_last_line(path, keep: int) -> None:
    lines = path.read_text().rstrip("\n").split("\n")
    path.write_text("\n".join([*lines[:-1], lines[-1][:keep]]))


def kuairand_file(tmp_path, name):
    return tmp_path / "KuaiRand-Pure" / "data" / f"{name}_pure.csv"


def test_a_cut_last_line_is_refused_naming_the_file(tmp_path):
    data = write_kuairand(tmp_path)
    for name in ("log_standard_4_22_to_5_08", "video_features_basic"):
        path = kuairand_file(tmp_path, name)
        text = path.read_text()
        cut_last_line(path, 30)
        with pytest.raises(ValueError, match=f"{name}_pure.csv: its last line has 5"):
            load_kuairand(data)
        path.write_text(text)
    write_aliexpress(tmp_path, "NL", 3)
    cut_last_line(tmp_path / "AliExpress_NL" / "train.csv", 100)
    with pytest.raises(
        ValueError, match="train.csv: its last line has .* where the file has 82"
    ):
        load_aliexpress(tmp_path)
    write_aliccp(tmp_path)
    cut_last_line(tmp_path / "sample_skeleton_train.csv", 25)
    with pytest.raises(
        ValueError,
        match="skeleton_train.csv: line 4: the 'feature_list' column is empty",
    ):
        load_aliccp(tmp_path)


@pytest.mark.parametrize(
    "name, old, new, message",
    [
        ("log_standard_4_08_to_4_21", ",1650485801301,1,", ",1650485801301,yes,",
         "line 2: the 'is_click' column holds 'yes', not a number"),
        ("log_standard_4_08_to_4_21", "\n1,11,", "\nu1,11,",
         "line 3: the 'user_id' column holds 'u1', not a number"),
        ("log_standard_4_08_to_4_21", ",1650485801301,1,", ",1650485801301,,",
         "line 2: the 'is_click' column is empty"),
    ],
)  # fmt: skip
def test_text_or_nothing_where_a_number_belongs_is_named(
    tmp_path, name, old, new, message
):
    data = write_kuairand(tmp_path)
    path = kuairand_file(tmp_path, name)
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(ValueError, match=f"{name}_pure.csv: {message}"):
        load_kuairand(data)


def test_text_in_aliexpress_and_aliccp_numbers_is_named(tmp_path):
    write_aliexpress(tmp_path, "NL", 3)
    path = tmp_path / "AliExpress_NL" / "train.csv"
    path.write_text(path.read_text().replace("\n31,", "\n31,x", 1))
    with pytest.raises(
        ValueError, match="train.csv: line 3: the 'categorical_1' column holds 'x"
    ):
        load_aliexpress(tmp_path)
    write_aliccp(tmp_path)
    path = tmp_path / "sample_skeleton_train.csv"
    path.write_text(path.read_text().replace("\n2,0,0,", "\n2,no,0,"))
    with pytest.raises(ValueError, match="skeleton_train.csv: line 2: the 'click'"):
        load_aliccp(tmp_path)


def test_a_join_key_listed_twice_with_other_values_is_refused(tmp_path):
    data = write_kuairand(tmp_path)
    users = kuairand_file(tmp_path, "user_features")
    text = users.read_text()
    users.write_text(text + text.splitlines(keepends=True)[1])  # the same: read once
    frame, _ = load_kuairand(data)
    assert frame["user_active_degree"].tolist()[0] == "full_active" and len(frame) == 4
    users.write_text(text + text.splitlines(keepends=True)[1].replace("full", "half"))
    with pytest.raises(
        ValueError,
        match=r"user_features_pure.csv: user_id 0 is "
        r"listed on lines \[2, 4\] with different values",
    ):
        load_kuairand(data)

    write_aliccp(tmp_path)
    common = tmp_path / "common_features_train.csv"
    common.write_text(common.read_text() + "5ab1af84e729a269,1,101\x0299\x031.0\n")
    twice = "common_feature_index '5ab1af84e729a269' is listed on lines 2 and 4"
    with pytest.raises(ValueError, match=f"common_features_train.csv: {twice}"):
        load_aliccp(tmp_path)
