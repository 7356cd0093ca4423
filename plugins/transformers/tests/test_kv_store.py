"""The cross-call KV store: continuations re-encode only their new tokens, with the same outputs."""

import torch

from openr_arith.task import ArithTask
from openr_core import GenerationRequest, SamplingParams
from openr_transformers.decoding import KVStore
from openr_transformers.generator import TransformersGenerator


def texts(results):
    return [[c.text for c in r.completions] for r in results]


def rounds(generator, prompts, n_rounds=3):
    """Step-by-step continuations, as a tree search makes them: each round extends every child."""
    step = SamplingParams(n=2, temperature=1.0, max_tokens=6, stop=("\n",), seed=7, logprobs=True)
    out = []
    for _ in range(n_rounds):
        results = generator.generate([GenerationRequest(p, step) for p in prompts])
        out.append([[(c.text, c.n_tokens, c.token_logprobs) for c in r.completions] for r in results])
        prompts = [p + c.text + "\n" for p, r in zip(prompts, results) for c in r.completions][:12]
    return out


def test_store_continuations_match_a_generator_without_it(random_model_dir):
    task = ArithTask()
    prompts = [task.prompt(p) for p in task.load("test", 4)]
    cached = TransformersGenerator(model=random_model_dir, batch_size=5)
    plain = TransformersGenerator(model=random_model_dir, kv_cache_mb=0)
    assert plain.kv_store is None
    a, b = rounds(cached, prompts), rounds(plain, prompts)
    assert [[[(t, n) for t, n, _ in r] for r in rnd] for rnd in a] == [[[(t, n) for t, n, _ in r] for r in rnd] for rnd in b]
    for ra, rb in zip(a, b):
        for ca, cb in zip(ra, rb):
            for (_, _, la), (_, _, lb) in zip(ca, cb):
                assert max(abs(x - y) for x, y in zip(la, lb)) < 1e-4
    store = cached.kv_store
    assert store.hits > 0 and store.reused_tokens > 0.5 * (store.prompt_tokens - sum(
        len(cached.tokenizer(p)["input_ids"]) for p in prompts))  # later rounds come mostly from the store


def test_store_entries_hold_the_model_kv(random_model_dir):
    task = ArithTask()
    generator = TransformersGenerator(model=random_model_dir)
    generator.generate([GenerationRequest(task.prompt(p), SamplingParams(n=3, temperature=1.0, max_tokens=5, seed=1))
                        for p in task.load("test", 3)])
    entries = list(generator.kv_store.entries.values())
    assert entries
    with torch.inference_mode():
        for entry in entries:
            cache = generator.model(input_ids=torch.tensor([entry.ids]), use_cache=True).past_key_values
            for n, layer in enumerate(cache.layers):
                keys = torch.cat([piece[0][n] for piece in entry.pieces], 1)
                values = torch.cat([piece[1][n] for piece in entry.pieces], 1)
                assert torch.allclose(layer.keys[0], keys, atol=1e-5) and torch.allclose(layer.values[0], values, atol=1e-5)


def test_store_empties_when_weights_change_and_stays_in_budget(random_model_dir):
    task = ArithTask()
    prompt = task.prompt(task.load("test", 1)[0])
    generator = TransformersGenerator(model=random_model_dir)
    params = SamplingParams(max_tokens=8)
    first = generator.generate([GenerationRequest(prompt, params)])[0].completions[0].text
    assert generator.kv_store.entries
    budget = 3 * next(iter(generator.kv_store.entries.values())).nbytes  # room for about three sequences
    with torch.no_grad():  # an optimizer step: in place
        generator.model.lm_head.weight.mul_(-1.0)
    changed = generator.generate([GenerationRequest(prompt + first, params)])
    fresh = TransformersGenerator.around(generator.model, generator.tokenizer, kv_cache_mb=0)
    assert texts(changed) == texts(fresh.generate([GenerationRequest(prompt + first, params)]))
    assert generator.kv_store.hits == 0  # nothing stale was read

    store = KVStore(max_bytes=budget)
    small = TransformersGenerator.around(generator.model, generator.tokenizer)
    small.kv_store = store
    small.generate([GenerationRequest(task.prompt(p), SamplingParams(n=4, temperature=1.0, max_tokens=8, seed=2))
                    for p in task.load("test", 5)])
    assert 0 < store.nbytes <= budget and 1 <= len(store.entries) <= 4 and sum(e.nbytes for e in store.entries.values()) == store.nbytes
