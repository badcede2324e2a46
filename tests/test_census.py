"""The Census-Income (KDD) loader: UCI's files, the MMoE paper's two tasks, the
splits."""

import gzip
import hashlib

import pytest

from sbmm.data.census import CENSUS_COLUMNS, CENSUS_SCHEMA, DATA, FILES, load_census

# UCI's test file as committed (data/census-income/README.md gives the same digest).
SHA256 = "5ac4cacd3ca9f1ecb10de1a0a41e4ac68fdc419e3fec190f5c0c6cc03b2ea659"


def uci_line(age: int, marital: str, income: str) -> str:
    """A row as UCI writes it: 42 values joined by ", "."""
    values = {c: "Not in universe" for c in CENSUS_COLUMNS}
    values.update(
        age=str(age), wage_per_hour="0", capital_gains="0", capital_losses="0",
        stock_dividends="0", num_emp="2", weeks_worked="52", instance_weight="1000.5",
        year="95", marital_stat=marital, income_50k=income, det_ind_code="33",
    )  # fmt: skip
    return ", ".join(values[c] for c in CENSUS_COLUMNS)


def write(path, lines: list[str]) -> None:
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")


def test_the_committed_file_is_ucis_test_file():
    assert hashlib.sha256((DATA / FILES["test"]).read_bytes()).hexdigest() == SHA256


def test_the_test_file_alone_is_split_into_three_with_the_papers_tasks():
    data = load_census(seed=0)
    sizes = [len(data.train), len(data.valid), len(data.test)]
    assert sum(sizes) == 99_762 and sizes == [79_810, 9_976, 9_976]
    columns = [*CENSUS_SCHEMA.features, *CENSUS_SCHEMA.labels]
    assert sorted(data.train.columns) == sorted(columns)
    assert len(CENSUS_SCHEMA.features) == 39  # 42 less two task columns and a weight
    for task, rate in (("income", 0.062), ("never_married", 0.434)):
        assert set(data.train[task].unique()) == {0.0, 1.0}
        assert data.train[task].mean() == pytest.approx(rate, abs=0.005)
    assert data.files == (DATA / FILES["test"],)
    again = load_census(seed=0)
    assert data.test.equals(again.test)
    assert not data.test.equals(load_census(seed=1).test)


def test_with_the_training_file_the_test_file_is_halved_into_valid_and_test(tmp_path):
    train = [uci_line(30 + i, "Never married", "- 50000.") for i in range(6)]
    test = [uci_line(40 + i, "Divorced", "50000+.") for i in range(10)]
    write(tmp_path / FILES["train"], train)
    write(tmp_path / FILES["test"], test)
    data = load_census(tmp_path)
    assert (len(data.train), len(data.valid), len(data.test)) == (6, 5, 5)
    assert data.train["never_married"].tolist() == [1.0] * 6
    assert data.train["income"].tolist() == [0.0] * 6
    assert data.valid["income"].tolist() == [1.0] * 5
    assert data.train["age"].tolist() == list(range(30, 36))
    assert data.train["det_ind_code"].iloc[0] == "33"  # a code names a class
    assert data.train["class_worker"].iloc[0] == "Not in universe"  # spaces stripped


def test_missing_and_malformed_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="census-income.test.gz is missing"):
        load_census(tmp_path)
    write(tmp_path / FILES["test"], ["1, 2, 3"] * 4)
    with pytest.raises(ValueError, match="census-income.test.gz: expected UCI's 42"):
        load_census(tmp_path)
    write(tmp_path / FILES["test"], [uci_line(30, "Divorced", "maybe.")] * 4)
    with pytest.raises(ValueError, match="unexpected values in the income column"):
        load_census(tmp_path)


def test_damaged_files_are_named_with_the_line_and_column(tmp_path):
    path = tmp_path / FILES["test"]
    lines = [uci_line(30 + i, "Divorced", "50000+.") for i in range(6)]
    write(path, lines)
    path.write_bytes(path.read_bytes()[:-20])  # a truncated download
    with pytest.raises(ValueError, match="census-income.test.gz could not be read"):
        load_census(tmp_path)
    path.write_text("not gzip")
    with pytest.raises(ValueError, match="could not be read .*BadGzipFile"):
        load_census(tmp_path)
    write(path, [*lines[:-1], lines[-1][:50]])  # the last line cut
    with pytest.raises(ValueError, match="test.gz: line 6: field .* is empty"):
        load_census(tmp_path)
    write(path, [*lines[:2], lines[2].replace("32", "thirty", 1), *lines[3:]])
    with pytest.raises(
        ValueError,
        match="test.gz: line 3: the 'age' column holds 'thirty', not a number",
    ):
        load_census(tmp_path)
    with pytest.raises(ValueError, match="fractions must be three"):
        load_census(tmp_path, (0.5, 0.5))
