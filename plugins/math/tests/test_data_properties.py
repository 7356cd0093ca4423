"""Property: any local data file gives the math task's problems or one DataError line naming the
file; never a traceback (non-UTF-8 bytes, damaged lines, records of any shape)."""

import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from openr_core import DataError
from openr_math.tasks import MathTask

scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=8)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                             max_size=3), max_leaves=8)
record = st.fixed_dictionaries({}, optional={
    "problem": st.text(max_size=8) | values, "question": values, "answer": values, "solution": values,
    "final_answer": values, "unique_id": values, "id": values, "idx": values, "level": values,
})
records = st.lists(record | values, max_size=4)
as_jsonl = records.map(lambda rs: b"".join(json.dumps(r).encode() + b"\n" for r in rs))
as_json = records.map(lambda rs: json.dumps(rs).encode()) | st.dictionaries(
    st.sampled_from(["data", "rows", "x"]), records, max_size=1).map(lambda d: json.dumps(d).encode())
damaged = st.tuples(as_jsonl, st.binary(max_size=6), st.integers(0, 200)).map(lambda t: t[0][: t[2]] + t[1] + t[0][t[2]:])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.sampled_from([".jsonl", ".json", ".parquet"]), content=as_jsonl | as_json | damaged | st.binary(max_size=60))
@example(suffix=".jsonl", content=b'{"\\n": 1}\n')  # a field named by a newline, listed in the error
def test_any_file_gives_problems_or_one_line(tmp_path, suffix, content):
    path = tmp_path / f"test{suffix}"
    path.write_bytes(content)
    try:
        problems = MathTask(path=str(path)).load("test")
    except DataError as e:
        assert str(e).startswith(str(path)) and "\n" not in str(e), str(e)
    else:
        assert all(isinstance(p.question, str) and p.question.strip() for p in problems)
        assert len({p.id for p in problems}) == len(problems)
