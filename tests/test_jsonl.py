"""The one record-file reader (openr_core.jsonl) and the results file built on it: any bytes give
records or one DataError line naming the file, never a traceback."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openr_core import DataError
from openr_core.jsonl import read_jsonl, read_records
from openr_core.runs import JsonlResults

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)
# bytes that are mostly JSON lines, with some damage: what a real broken file looks like
json_lines = st.lists(json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=12), max_size=6).map(
    b"\n".join)
any_bytes = st.binary(max_size=200) | json_lines


def one_line_error(error: DataError, path) -> None:
    message = str(error)
    assert message.startswith(str(path)) and "\n" not in message, message


@PROPERTY
@given(data=any_bytes, suffix=st.sampled_from([".jsonl", ".json", ".txt"]))
def test_any_bytes_give_records_or_one_line(tmp_path, data, suffix):
    path = tmp_path / f"data{suffix}"
    path.write_bytes(data)
    try:
        records = read_records(path)
    except DataError as e:
        one_line_error(e, path)
    else:
        assert all(isinstance(r, dict) for r in records)


@PROPERTY
@given(data=any_bytes)
def test_any_results_file_loads_or_is_one_line(tmp_path, data):
    path = tmp_path / "results.jsonl"
    path.write_bytes(data)
    try:
        results = JsonlResults(path)
    except DataError as e:
        one_line_error(e, path)
    else:  # loaded: the file now ends with a whole line, and appending works
        assert path.read_bytes()[-1:] in (b"", b"\n")
        results.append({"id": "new-record"})
        assert "new-record" in JsonlResults(path)


def test_what_each_error_names(tmp_path):
    path = tmp_path / "d.jsonl"
    cases = {
        b'{"a": 1}\n{"a": \n': f"{path}:2: invalid JSON",
        b'{"a": 1}\n[1]\n': f"{path}:2: expected a JSON object, got a list",
        b'{"a": "\xe9"}\n': f"{path}:1: not UTF-8 text (byte 7",
        b"[" * 100_000 + b"\n": f"{path}:1: invalid JSON",
        b'{"a": ' + b"1" * 5000 + b"}\n": f"{path}:1: invalid JSON",
    }
    for data, message in cases.items():
        path.write_bytes(data)
        with pytest.raises(DataError) as info:
            read_jsonl(path)
        assert str(info.value).startswith(message), str(info.value)
    with pytest.raises(DataError, match=r"nothing.jsonl: no such file"):
        read_jsonl(tmp_path / "nothing.jsonl")
    with pytest.raises(DataError, match=r": cannot read: Is a directory"):
        read_jsonl(tmp_path)


def test_lines_split_on_newline_only_and_a_bom_is_skipped(tmp_path):
    path = tmp_path / "d.jsonl"
    # U+2028 inside a string is valid JSON; str.splitlines() used to cut the record there
    path.write_bytes(b"\xef\xbb\xbf" + '{"t": "a\u2028b\x85c"}\r\n\n{"t": 2}\n'.encode())
    assert read_jsonl(path) == [{"t": "a\u2028b\x85c"}, {"t": 2}]


def test_json_files(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[{"a": 1}, {"a": 2}]')
    assert read_records(path) == [{"a": 1}, {"a": 2}]
    path.write_text('{"data": [{"a": 1}]}')
    assert read_records(path) == [{"a": 1}]
    path.write_text('{"a": 1}\n{"a": 2}\n')  # JSON Lines named .json
    assert read_records(path) == [{"a": 1}, {"a": 2}]
    path.write_text('[{"a": 1}, 3]')
    with pytest.raises(DataError, match=r"d.json: record 1: expected a JSON object, got a number"):
        read_records(path)
    path.write_text('"text"')
    with pytest.raises(DataError, match=r"d.json: expected a JSON array of records, got a string"):
        read_records(path)
    path.write_text('[{"a": 1}')
    with pytest.raises(DataError, match=r"d.json: invalid JSON"):
        read_records(path)


def test_parquet_files(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist([{"a": 1, "b": "x"}, {"a": 2, "b": None}]), path)
    assert read_records(path) == [{"a": 1, "b": "x"}, {"a": 2, "b": None}]
    for damaged in (b"", b"PAR1 not really PAR1", path.read_bytes()[:-20]):
        (tmp_path / "bad.parquet").write_bytes(damaged)
        with pytest.raises(DataError) as info:
            read_records(tmp_path / "bad.parquet")
        one_line_error(info.value, tmp_path / "bad.parquet")
        assert "not a readable Parquet file" in str(info.value)
