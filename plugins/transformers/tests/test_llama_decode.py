"""The hand-written Llama decode step over a shared prompt KV, and the fallback for other models."""

import pytest
import torch
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

from openr_arith.task import ArithTask
from openr_core import GenerationRequest, SamplingParams
from openr_core.paths import resolve_location
from openr_transformers.decoding import _SlabLayer, _slab_cache
from openr_transformers.generator import TransformersGenerator
from openr_transformers import llama_decode
from openr_transformers.llama_decode import SharedPrefixDecoder, supports


@pytest.mark.parametrize("fused", [True, False])  # large models keep q/k/v and gate/up apart
def test_decode_step_matches_the_model_forward(random_model_dir, monkeypatch, fused):
    if not fused:
        monkeypatch.setattr(llama_decode, "FUSE_MAX_BYTES", 0)
    generator = TransformersGenerator(model=random_model_dir)
    model = generator.model.eval()
    assert len(llama_decode.load(model).layers[0].qkv) == (1 if fused else 3)
    assert supports(model)
    torch.manual_seed(0)
    with torch.inference_mode():
        prompts, width = 3, 7
        ids = torch.randint(3, 200, (prompts, width))
        mask = torch.ones(prompts, width, dtype=torch.long)
        mask[1, :2] = 0  # left padding, as the prefill lays out prompts of different lengths
        mask[2, :4] = 0
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        layers = [_SlabLayer(width) for _ in range(model.config.num_hidden_layers)]
        model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=_slab_cache(layers), use_cache=True)
        unit = [0, 0, 1, 2, 2, 2, 1]  # rows of one prompt share its KV; groups of different sizes, any order
        decoder = SharedPrefixDecoder(model, [(layer.keys, layer.values) for layer in layers], mask, unit, 5)
        seqs = [ids[u][mask[u] == 1].tolist() for u in unit]
        next_pos = positions[unit, -1] + 1
        for step in range(4):
            tokens = torch.randint(3, 200, (len(unit),))
            logits = decoder.step(tokens, next_pos)
            for r in range(len(unit)):
                seqs[r].append(int(tokens[r]))
                expected = model(input_ids=torch.tensor([seqs[r]])).logits[0, -1]
                assert torch.allclose(logits[r], expected, atol=1e-5), (step, r)
            next_pos = next_pos + 1
            if step == 1:  # finished rows leave; the rest keep their own tokens' KV
                keep = torch.tensor([6, 0, 3, 5])
                decoder.keep(keep)
                unit, seqs, next_pos = [unit[i] for i in keep], [seqs[i] for i in keep], next_pos[keep]
        own_keys, _ = decoder.own_kv(torch.tensor([1]))
        full = model(input_ids=torch.tensor([seqs[1]]), use_cache=True).past_key_values
        assert torch.allclose(own_keys[0][0], full.layers[0].keys[0, :, -decoder.length:], atol=1e-5)


def test_other_architectures_decode_through_their_own_forward():
    skeleton = resolve_location("pkg:openr_arith/models/skeleton")
    tokenizer = AutoTokenizer.from_pretrained(skeleton)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=2, n_head=2,
                                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    assert not supports(model)
    task = ArithTask()
    prompts = [task.prompt(p) for p in task.load("test", 4)]
    reuse = TransformersGenerator.around(model, tokenizer)
    naive = TransformersGenerator.around(model, tokenizer, prefix_reuse=False, batch_size=3)
    params = SamplingParams(n=3, temperature=1.0, max_tokens=8, seed=4, logprobs=True)
    a = reuse.generate([GenerationRequest(p, params) for p in prompts])
    b = naive.generate([GenerationRequest(p, params) for p in prompts])
    assert [[c.text for c in r.completions] for r in a] == [[c.text for c in r.completions] for r in b]
    assert all(len(c.token_logprobs) == c.n_tokens for r in a for c in r.completions)
    alone = reuse.generate([GenerationRequest(prompts[2], params)])[0]
    assert [c.text for c in alone.completions] == [c.text for c in a[2].completions]


def test_multi_token_stop_string(policy):
    task = ArithTask()
    prompt = task.prompt(task.load("test", 1)[0])
    full = policy.generate([GenerationRequest(prompt, SamplingParams(max_tokens=12))])[0].completions[0].text
    stop = " ".join(full.split()[2:4])  # two tokens inside the first step, e.g. "7 ="
    assert len(policy.tokenizer(stop, add_special_tokens=False)["input_ids"]) == 2
    cut = policy.generate([GenerationRequest(prompt, SamplingParams(max_tokens=12, stop=(stop,)))])[0].completions[0]
    assert cut.stop_reason == "stop" and cut.matched_stop == stop and cut.text == full[: full.find(stop)]
