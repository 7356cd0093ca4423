"""Property: any file, read in any PRM data format, gives examples or one DataError line naming the
file; never a traceback. Records are drawn near each format's real shape, so the field checks (not
only the JSON parser) are exercised."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openr_core import DataError
from openr_core.types import LabelledExample
from openr_prm.data import FORMATS, load_stepwise

scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-1, 2) | st.just(float("nan")) | st.text(max_size=6)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                             max_size=3), max_leaves=8)
steps = st.lists(st.text(max_size=6), max_size=4)
FIELDS = {  # each format's field names, drawn with plausible and implausible values
    "openr": {"prompt": st.text(max_size=6) | values, "completions": steps | values,
              "labels": st.lists(st.booleans(), max_size=4) | values, "soft_labels": values, "meta": values,
              "problem_id": values},
    "trl": {"prompt": st.text(max_size=6) | values, "completions": steps | values,
            "labels": st.lists(st.booleans() | st.floats(0, 1), max_size=4) | values},
    "math-shepherd": {"input": st.text(alphabet="ab ки+-Step1:", max_size=20) | values,
                      "label": st.text(alphabet="ab +-Step1:", max_size=20) | values},
    "prm800k": {"question": st.text(max_size=6) | st.fixed_dictionaries({"problem": values}) | values,
                "label": st.fixed_dictionaries({"steps": st.lists(st.fixed_dictionaries(
                    {"completions": st.lists(st.fixed_dictionaries({"text": values, "rating": values}), max_size=2)
                     | values, "chosen_completion": values, "human_completion": values}) | values, max_size=3)})
                | values},
    "processbench": {"problem": st.text(max_size=6) | values, "steps": steps | values,
                     "label": st.integers(-2, 5) | values, "id": values},
}


REQUIRED = {"openr": ("prompt", "completions", "labels"), "trl": ("prompt", "completions", "labels"),
            "math-shepherd": ("input", "label"), "prm800k": ("question", "label"),
            "processbench": ("problem", "steps", "label")}


def records(format):
    fields = FIELDS[format]
    required = {k: v for k, v in fields.items() if k in REQUIRED[format]}
    optional = {k: v for k, v in fields.items() if k not in REQUIRED[format]}
    record = st.fixed_dictionaries(required, optional=optional)
    return st.lists(record | st.fixed_dictionaries({}, optional=fields) | values, max_size=3)


def files(format):
    as_jsonl = records(format).map(lambda rs: b"".join(json.dumps(r).encode() + b"\n" for r in rs))
    as_json = records(format).map(lambda rs: json.dumps(rs).encode())
    damaged = st.tuples(as_jsonl, st.binary(max_size=6), st.integers(0, 200)).map(
        lambda t: t[0][: t[2]] + t[1] + t[0][t[2]:])
    return st.tuples(st.sampled_from([".jsonl", ".json"]), as_jsonl | as_json | damaged | st.binary(max_size=60))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), format=st.sampled_from(FORMATS))
def test_any_file_in_any_format_gives_examples_or_one_line(tmp_path, data, format):
    suffix, content = data.draw(files(format))
    path = tmp_path / f"data{suffix}"
    path.write_bytes(content)
    try:
        examples = load_stepwise(path, format)
    except DataError as e:
        assert str(e).startswith(str(path)) and "\n" not in str(e), str(e)
    else:
        for e in examples:
            assert isinstance(e, LabelledExample) and isinstance(e.prompt, str)
            assert all(isinstance(s, str) for s in e.completions)
            assert all(isinstance(x, bool) for x in e.labels) and len(e.labels) == len(e.completions)
