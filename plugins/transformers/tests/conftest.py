import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from openr_core.paths import resolve_location


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory):
    """A randomly initialised sandbox Llama saved as an HF folder (for tests that need no skill)."""
    path = tmp_path_factory.mktemp("random-llama")
    skeleton = resolve_location("pkg:openr_arith/models/skeleton")
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(skeleton)).save_pretrained(path)
    AutoTokenizer.from_pretrained(skeleton).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def policy():
    from openr_transformers.generator import TransformersGenerator

    return TransformersGenerator(model="pkg:openr_arith/models/policy")
