import filecmp

import pytest
import json
from pathlib import Path

from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from openr_arith.model_files import vocabulary, write_skeleton
from openr_arith.task import ArithTask
from openr_core.paths import resolve_location

SKELETON = "pkg:openr_arith/models/skeleton"


def test_tokenizer_round_trip_and_word_level_tokens():
    tok = AutoTokenizer.from_pretrained(resolve_location(SKELETON))
    task = ArithTask()
    for problem in task.load("test", 100):
        text = task.prompt(problem) + problem.meta["solution"]
        ids = tok(text)["input_ids"]
        assert ids[0] == tok.bos_token_id and tok.unk_token_id not in ids
        decoded = tok.decode(ids, skip_special_tokens=True)
        assert decoded.split() == text.split()  # same words; only spacing around newlines differs
        assert decoded.count("\n") == text.count("\n")
        assert tok(decoded)["input_ids"] == ids
    assert tok.convert_ids_to_tokens(tok("57 + 8 = 65\n")["input_ids"]) == ["[BOS]", "57", "+", "8", "=", "65", "\n"]
    assert tok.padding_side == "left"


@pytest.mark.parametrize("name, layers, size", [("skeleton", 2, (0.4e6, 1e6))])
def test_skeleton_loads_like_a_checkpoint_and_is_current(tmp_path, name, layers, size):
    path = resolve_location(f"pkg:openr_arith/models/{name}")
    config = AutoConfig.from_pretrained(path)
    assert config.model_type == "llama" and config.vocab_size == len(vocabulary())
    assert config.num_hidden_layers == layers
    model = AutoModelForCausalLM.from_config(config)
    assert size[0] < sum(p.numel() for p in model.parameters()) < size[1]
    fresh = write_skeleton(tmp_path / "skeleton", layers=layers)
    for name in ("config.json", "tokenizer_config.json"):
        def content(folder):  # the transformers version stamp is not content
            data = json.loads((folder / name).read_text())
            data.pop("transformers_version", None)
            return data
        assert content(fresh) == content(Path(path)), name
    assert filecmp.cmp(fresh / "tokenizer.json", Path(path) / "tokenizer.json", shallow=False)
