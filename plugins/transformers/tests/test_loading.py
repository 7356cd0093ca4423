"""Loading a model folder that is missing or corrupt is one DataError line, not a traceback or the
hub client's "Repo id must be in the form ..."."""

import shutil

import pytest

from openr_core import DataError
from openr_core.paths import looks_local, resolve_location
from openr_transformers.loading import load_causal_lm, load_tokenizer

POLICY = resolve_location("pkg:openr_arith/models/policy")


@pytest.mark.parametrize("where", ["absolute", "relative", "dotted"])
def test_a_missing_local_folder_is_named(tmp_path, monkeypatch, where):
    monkeypatch.chdir(tmp_path)
    location = {"absolute": str(tmp_path / "runs" / "sft" / "final"), "relative": "runs/sft/final",
                "dotted": "./final"}[where]
    for load in (load_causal_lm, load_tokenizer):
        with pytest.raises(DataError) as info:
            load(location)
        message = str(info.value)
        assert "no such folder" in message and location in message and "\n" not in message
        assert "Repo id" not in message


def test_a_file_is_not_a_model_folder(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{}")
    with pytest.raises(DataError, match=r"model '.*config.json': is not a folder"):
        load_causal_lm(str(path))


@pytest.mark.parametrize("damage", ["empty", "garbage", "cut short"])
def test_a_corrupt_safetensors_file_is_one_line(tmp_path, damage):
    folder = tmp_path / "model"
    shutil.copytree(POLICY, folder)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes({"empty": b"", "garbage": bytes(range(256)) * 20, "cut short": data[: len(data) // 2]}[damage])
    with pytest.raises(DataError) as info:
        load_causal_lm(str(folder), threads=1)
    message = str(info.value)
    assert message.startswith(f"model '{folder}': cannot load: a .safetensors file is corrupt or cut short")
    assert "\n" not in message


def test_hub_names_are_not_local_paths():
    assert not looks_local("Qwen/Qwen2.5-Math-7B-Instruct") and not looks_local("gpt2")
    assert looks_local("/abs/model") and looks_local("./model") and looks_local("../model")
    assert looks_local("runs/sft/final") and looks_local("~/models/x")


@pytest.mark.parametrize("damage", ["missing", "empty", "cut short"])
def test_every_auto_class_loads_through_the_same_checks(tmp_path, damage):
    """Token-classification and sequence-classification heads (classifier-prm, outcome-rm, the RL
    value model) get the causal LM's one line, not a SafetensorError traceback or "Repo id ..."."""
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    from openr_transformers.loading import load_pretrained

    folder = tmp_path / "model"
    if damage != "missing":
        shutil.copytree(POLICY, folder)
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(b"" if damage == "empty" else data[: len(data) - 100])
    for auto_class in (AutoModelForTokenClassification, AutoModelForSequenceClassification):
        with pytest.raises(DataError) as info:
            load_pretrained(auto_class, str(folder), num_labels=1)
        message = str(info.value)
        expected = "no such folder" if damage == "missing" else "cannot load: a .safetensors file is corrupt or cut short: model.safetensors: "
        assert message.startswith(f"model '{folder}': ") and expected in message and "\n" not in message


@pytest.mark.parametrize(("device", "message"), [
    ("tpu", "device 'tpu': not a torch device (auto, cpu, cuda, cuda:N, mps, ...)"),
    ("cuda:99", "device 'cuda:99': this machine has"),
])
def test_a_device_this_machine_lacks_is_one_config_line(device, message):
    from openr_core import ConfigError
    from openr_transformers.loading import pick_device

    with pytest.raises(ConfigError) as info:
        pick_device(device)
    assert str(info.value).startswith(message)
    assert pick_device("cpu").type == "cpu"


@pytest.mark.parametrize(("field", "value", "message"), [
    ("examples", 0, "examples: must be >= 1: 0"),
    ("lr", -1.0, "lr: must be > 0: -1.0"),
    ("warmup_steps", -5, "warmup_steps: must be >= 0: -5"),
    ("save_every", -1, "save_every: must be >= 0: -1"),
    ("eval_problems", 0, "eval_problems: must be >= 1: 0"),
    ("max_grad_norm", -1.0, "max_grad_norm: must be >= 0: -1.0"),
])
def test_sft_counts_and_rates_are_checked_before_training(field, value, message):
    """Each of these passed `openr validate` and then trained on everything (examples: 0), saved
    every step (save_every: -1), or crashed mid-run (lr: -1, eval_problems: 0)."""
    from openr_core import ConfigError
    from openr_transformers.sft import SFTTrainer

    with pytest.raises(ConfigError) as info:
        SFTTrainer(model="m", **{field: value})
    assert str(info.value) == f"SFTTrainer: {message}"


@pytest.mark.parametrize(("file", "content", "expected"), [
    ("config.json", "{bad", "config.json' is not a valid JSON file"),
    ("config.json", None, "hidden_size"),  # a field of the wrong type (NaN for an int)
    ("generation_config.json", "[1, 2]", "TypeError: 'list' object is not a mapping"),
])
def test_a_damaged_config_file_is_one_line(tmp_path, file, content, expected):
    folder = tmp_path / "model"
    shutil.copytree(POLICY, folder)
    if content is None:
        text = (folder / file).read_text()
        content = text.replace('"hidden_size": ', '"hidden_size": NaN, "was": ')
    (folder / file).write_text(content)
    with pytest.raises(DataError) as info:
        load_causal_lm(str(folder), threads=1)
    message = str(info.value)
    assert message.startswith(f"model '{folder}': cannot load: ") and expected in message and "\n" not in message
