"""vLLM and transformers on a BPE policy with Llama-3's conventions (``"\\n\\n"`` merged into
punctuation tokens, a BOS-adding tokenizer, its chat template): the same greedy texts and step
boundaries, greedy requests with n > 1, and one BOS for a chat prompt."""

import pytest

from openr_core import GenerationRequest, SamplingParams
from openr_core.tokenizing import encode_prompt
from openr_transformers import replicas

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
SEP = replicas.SEPARATOR


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory, vllm_installed):
    return replicas.step_policy_in(tmp_path_factory.getbasetemp())  # trained once per test session


@pytest.fixture(scope="module")
def vllm_gen(policy_dir):
    from openr_vllm.generator import VLLMGenerator

    generator = VLLMGenerator(model=str(policy_dir), enforce_eager=True, block_size=32, max_model_len=256)
    yield generator
    generator.close()


@pytest.fixture(scope="module")
def hf_gen(policy_dir):
    from openr_transformers.generator import TransformersGenerator

    return TransformersGenerator(model=str(policy_dir))


def same(a, b):
    assert a.n_prompt_tokens == b.n_prompt_tokens
    assert [(c.text, c.n_tokens, c.stop_reason, c.matched_stop) for c in a.completions] == \
           [(c.text, c.n_tokens, c.stop_reason, c.matched_stop) for c in b.completions]


def test_greedy_steps_end_at_the_same_token_as_transformers(vllm_gen, hf_gen):
    tok = hf_gen.tokenizer
    chat = tok.apply_chat_template([{"role": "user", "content": "what is 12 plus 30?"}], tokenize=False,
                                   add_generation_prompt=True)
    prefixes = [p for p, _ in replicas.solutions(10, seed=1)] + [chat]
    merged = steps = 0
    for _ in range(3):  # three steps, each prompt continued by the step just generated + the separator
        requests = [GenerationRequest(p, SamplingParams(max_tokens=32, stop=(SEP,))) for p in prefixes]
        ours, theirs = vllm_gen.generate(requests), hf_gen.generate(requests)
        for a, b in zip(ours, theirs):
            same(a, b)
        for p, r in zip(prefixes, ours):
            [c] = r.completions
            assert SEP not in c.text
            if c.matched_stop:
                steps += 1
                merged += c.text.endswith((".", ":", "}"))  # the separator came inside a merged token
        prefixes = [p + r.completions[0].text + SEP for p, r in zip(prefixes, ours)]
    assert steps >= 25 and merged >= 8
    # without stops (whole solutions), and with one-character stops inside merged tokens (" =", ".\n\n")
    requests = [GenerationRequest(p, SamplingParams(max_tokens=48, stop=stop)) for p, _ in replicas.solutions(6, seed=3)
                for stop in [(), ("=",), ("\n",), ("$", ":")]]
    for a, b in zip(vllm_gen.generate(requests), hf_gen.generate(requests)):
        same(a, b)
    # the chat prompt reached vLLM with one BOS, like the tokenizer's own chat encoding
    reference = tok.apply_chat_template([{"role": "user", "content": "what is 12 plus 30?"}], tokenize=True,
                                        add_generation_prompt=True, return_dict=True)["input_ids"]
    assert vllm_gen.generate([GenerationRequest(chat, SamplingParams(max_tokens=1))])[0].n_prompt_tokens == len(reference)
    assert encode_prompt(tok, chat) == reference


def test_greedy_requests_with_n_above_one(vllm_gen, hf_gen):
    prompt = replicas.solutions(1, seed=4)[0][0]
    params = SamplingParams(n=4, temperature=0.0, max_tokens=24, stop=(SEP,))
    ours = vllm_gen.generate([GenerationRequest(prompt, params)])[0]
    assert len(ours.completions) == 4 and len(set(ours.completions)) == 1
    same(ours, hf_gen.generate([GenerationRequest(prompt, params)])[0])


def test_greedy_beam_search_finds_the_same_candidates(vllm_gen, hf_gen):
    """Beam search at temperature 0 asks for n > 1 greedy children; both generators give the same tree."""
    from openr_core import StepScores
    from openr_core.interfaces import RewardModel
    from openr_search.tree import Beam

    class StepLength(RewardModel):
        def score(self, requests):
            return [StepScores([1.0 / (1 + len(s)) for s in r.steps], len(r.steps)) for r in requests]

    task = replicas.step_task()
    problems = task.load("test", 3)
    beam = Beam(n=4, width=2, temperature=0.0, step_max_tokens=24, max_steps=6)
    ours = beam.search(problems, task=task, generator=vllm_gen, reward_model=StepLength())
    theirs = beam.search(problems, task=task, generator=hf_gen, reward_model=StepLength())
    assert [[list(c.steps) for c in r.candidates] for r in ours] == [[list(c.steps) for c in r.candidates] for r in theirs]
    assert all(SEP not in s for r in ours for c in r.candidates for s in c.steps)
