import pytest
import torch
from transformers import (AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification,
                          AutoModelForTokenClassification, AutoTokenizer)

from openr_arith.task import ArithTask
from openr_core.paths import resolve_location


@pytest.fixture(scope="session")
def random_models(tmp_path_factory):
    """Randomly initialised sandbox models with each head, saved as HF folders."""
    skeleton = resolve_location("pkg:openr_arith/models/skeleton")
    tokenizer = AutoTokenizer.from_pretrained(skeleton)
    out = {}
    for name, cls, extra in (("causal", AutoModelForCausalLM, {}), ("causal2", AutoModelForCausalLM, {}),
                             ("token", AutoModelForTokenClassification, {"num_labels": 2}),
                             ("sequence", AutoModelForSequenceClassification, {"num_labels": 1})):
        torch.manual_seed(len(out))
        config = AutoConfig.from_pretrained(skeleton, **extra)
        path = tmp_path_factory.mktemp(name)
        cls.from_config(config).save_pretrained(path)
        tokenizer.save_pretrained(path)
        out[name] = str(path)
    return out


@pytest.fixture(scope="session")
def arith():
    return ArithTask()
