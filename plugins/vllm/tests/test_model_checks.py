"""A missing or corrupt model folder is one DataError line before vLLM starts (or is even
imported): vLLM's own answer is a worker traceback. Needs no vLLM."""

import pytest

from openr_core import DataError
from openr_vllm.engine import EngineConfig, start_engine


@pytest.mark.parametrize("damage", ["missing", "empty"])
def test_start_engine_checks_the_model_folder_first(tmp_path, damage):
    folder = tmp_path / "model"
    if damage == "empty":
        folder.mkdir()
        (folder / "config.json").write_text("{}")
        (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(DataError) as info:
        start_engine(EngineConfig(model=str(folder)))
    expected = "no such folder" if damage == "missing" else "model.safetensors: 0 bytes"
    assert str(info.value).startswith(f"model '{folder}': ") and expected in str(info.value)
