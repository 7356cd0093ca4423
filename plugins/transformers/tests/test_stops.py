"""Stop strings end a row where the decoded text holds them, with a BPE vocabulary that merges the
step separator into punctuation tokens (``".\\n\\n"``, ``":\\n\\n"``) as Llama-3's and Qwen2's do;
and a prompt rendered by Llama-3's chat template reaches the model with one BOS."""

import pytest
import torch

from openr_core import GenerationRequest, RewardModel, SamplingParams, StepScores
from openr_core.tokenizing import encode_prompt
from openr_transformers import replicas, stops
from openr_transformers.generator import TransformersGenerator

SEP = replicas.SEPARATOR


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    return replicas.step_policy_in(tmp_path_factory.getbasetemp())  # trained once per test session


@pytest.fixture(scope="module")
def llama(policy_dir):
    return TransformersGenerator(model=str(policy_dir))


@pytest.fixture(scope="module")
def qwen(llama):
    """The same weights as a Qwen2 (zero q/k/v biases): decoded through the model's own forward,
    where the Llama decodes with openr_transformers.llama_decode."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    c = llama.model.config
    config = Qwen2Config(vocab_size=c.vocab_size, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
                         num_hidden_layers=c.num_hidden_layers, num_attention_heads=c.num_attention_heads,
                         num_key_value_heads=c.num_key_value_heads, max_position_embeddings=c.max_position_embeddings,
                         rms_norm_eps=c.rms_norm_eps, rope_parameters=dict(c.rope_parameters), tie_word_embeddings=False,
                         bos_token_id=c.bos_token_id, eos_token_id=c.eos_token_id, pad_token_id=c.pad_token_id)
    model = Qwen2ForCausalLM(config).eval()
    missing, unexpected = model.load_state_dict(llama.model.state_dict(), strict=False)
    assert not unexpected and all(name.endswith("_proj.bias") for name in missing)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in missing:
                p.zero_()
    ids = torch.tensor([encode_prompt(llama.tokenizer, "Question: what is 2 plus 3?\nAnswer:\n")])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, llama.model(ids).logits, atol=1e-5)
    return TransformersGenerator.around(model, llama.tokenizer)


def prompts(n=8):
    return [p for p, _ in replicas.solutions(n, seed=1)]


def token_text(tokenizer, token):
    return tokenizer.decode([token])


def test_separator_is_merged_into_punctuation_tokens_so_ids_alone_cannot_match_it(llama):
    tok = llama.tokenizer
    for merged in (".\n\n", ":\n\n", "}\n\n"):
        assert len(tok(merged, add_special_tokens=False)["input_ids"]) == 1, merged
    plan = stops.plan(tok, (SEP,))
    assert plan.ids is None  # text matching
    dot = tok(".\n\n", add_special_tokens=False)["input_ids"][0]
    word = tok(" sum", add_special_tokens=False)["input_ids"][0]
    assert plan.candidates[dot] and not plan.candidates[word]
    assert stops.plan(tok, ("=",)).ids is None  # " =" is a token too


def test_fast_path_is_kept_where_exact():
    from openr_arith.model_files import build_tokenizer

    tok = build_tokenizer()
    newline = tok("\n", add_special_tokens=False)["input_ids"]
    assert stops.plan(tok, ("\n",)).ids == frozenset(newline)  # the sandbox's step separator: one token, in no other
    assert stops.plan(tok, ("=",)).ids is not None
    assert stops.plan(tok, ("7 =",)).ids is None  # two tokens


def test_a_stop_that_two_tokens_can_spell_is_matched_on_text():
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE({"a": 0, "b": 1, "ab": 2, "c": 3, "xa": 4}, [("a", "b")]))
    tok.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=tok)
    assert tok("ab", add_special_tokens=False)["input_ids"] == [2]
    assert stops.plan(tok, ("c",)).ids == frozenset({3})  # in no other token, no token ends with a part of it
    spelled = stops.plan(tok, ("ab",))  # "a" + "b", and "xa" + "b"
    assert spelled.ids is None and spelled.candidates.tolist() == [False, True, True, False, False]


def greedy_reference(generator, prompt, max_tokens):
    """Token ids of a greedy continuation by transformers' own ``model.generate``."""
    model, tok = generator.model, generator.tokenizer
    ids = torch.tensor([encode_prompt(tok, prompt)])
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                             do_sample=False, eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id)
    return out[0, ids.shape[1]:].tolist()


@pytest.mark.parametrize("which", ["llama", "qwen"])
def test_greedy_step_ends_at_the_token_that_completes_the_separator(which, request):
    generator = request.getfixturevalue(which)
    tok = generator.tokenizer
    texts = prompts()
    results = generator.generate([GenerationRequest(p, SamplingParams(max_tokens=40, stop=(SEP,))) for p in texts])
    merged = 0
    for prompt, result in zip(texts, results):
        ids = greedy_reference(generator, prompt, 40)
        k = next(k for k in range(1, len(ids) + 1) if SEP in tok.decode(ids[:k], skip_special_tokens=True))
        full = tok.decode(ids[:k], skip_special_tokens=True)
        [c] = result.completions
        assert (c.text, c.n_tokens, c.stop_reason, c.matched_stop) == (full[: full.find(SEP)], k, "stop", SEP)
        assert SEP not in c.text
        merged += token_text(tok, ids[k - 1]) != SEP
    assert merged >= len(texts) // 2  # most first steps end in a merged token (".\n\n", ":\n\n")


@pytest.mark.parametrize("stop", [("=",), ("\n",), ("$", ":"), ("is 1", "}")])
def test_greedy_text_ends_before_the_first_stop_string(llama, stop):
    """Stops of one character inside merged tokens (" =", ".\n\n"), several stops, stops of several tokens."""
    tok = llama.tokenizer
    texts = prompts(6)
    results = llama.generate([GenerationRequest(p, SamplingParams(max_tokens=48, stop=stop)) for p in texts])
    for prompt, result in zip(texts, results):
        ids = greedy_reference(llama, prompt, 48)
        decoded = [tok.decode(ids[:k], skip_special_tokens=True) for k in range(1, len(ids) + 1)]
        k = next((k for k, text in enumerate(decoded, 1) if any(s in text for s in stop)), None)
        [c] = result.completions
        if k is None:
            assert (c.text, c.n_tokens, c.matched_stop) == (decoded[-1], len(ids), None)
            continue
        first = min((decoded[k - 1].find(s), s) for s in stop if s in decoded[k - 1])
        assert (c.text, c.n_tokens, c.stop_reason, c.matched_stop) == (decoded[k - 1][: first[0]], k, "stop", first[1])


@pytest.mark.parametrize("which", ["llama", "qwen"])
def test_sampled_steps_are_the_unstopped_text_cut_at_the_separator(which, request):
    generator = request.getfixturevalue(which)
    texts = prompts(4)
    stopped = generator.generate([GenerationRequest(p, SamplingParams(n=8, temperature=1.0, max_tokens=48, seed=5, stop=(SEP,)))
                                  for p in texts])
    free = generator.generate([GenerationRequest(p, SamplingParams(n=8, temperature=1.0, max_tokens=48, seed=5)) for p in texts])
    cut = 0
    for a, b in zip(stopped, free):
        for x, y in zip(a.completions, b.completions):
            assert SEP not in x.text
            if SEP in y.text:
                assert x.text == y.text[: y.text.find(SEP)] and x.matched_stop == SEP
                cut += 1
            else:
                assert x.text == y.text
    assert cut >= 16


class ShortStepsRM(RewardModel):
    """Prefers short steps (any deterministic scorer will do: the test is about step boundaries)."""

    def score(self, requests):
        return [StepScores([1.0 / (1 + len(s)) for s in r.steps], len(r.steps)) for r in requests]


def test_beam_dvts_and_mcts_never_put_the_separator_inside_a_step(llama):
    from openr_search.mcts import MCTS
    from openr_search.tree import DVTS, Beam

    task = replicas.step_task()
    problems = task.load("test", 3)
    searchers = [Beam(n=4, width=2, temperature=1.0, step_max_tokens=24, max_steps=6, seed=3),
                 DVTS(n=4, expansions=2, temperature=1.0, step_max_tokens=24, max_steps=6, seed=3),
                 MCTS(n=2, temperature=1.0, step_max_tokens=24, max_steps=6, seed=3)]
    steps = []
    for searcher in searchers:
        for result in searcher.search(problems, task=task, generator=llama, reward_model=ShortStepsRM()):
            for candidate in result.candidates:
                steps += candidate.steps
    assert len(steps) >= 18
    assert not [s for s in steps if SEP in s]
    assert sum(s.endswith((".", ":")) for s in steps) >= 4  # steps whose end was a merged token


def test_llama3_chat_prompt_reaches_the_model_with_one_bos(llama):
    from openr_transformers.sft_loop import encode

    tok = llama.tokenizer
    chat = tok.apply_chat_template([{"role": "user", "content": "what is 2 plus 3?"}], tokenize=False,
                                   add_generation_prompt=True)
    assert chat.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n")
    assert tok(chat)["input_ids"][:2] == [tok.bos_token_id] * 2  # what the tokenizer alone gives
    reference = tok.apply_chat_template([{"role": "user", "content": "what is 2 plus 3?"}], tokenize=True,
                                        add_generation_prompt=True, return_dict=True)["input_ids"]
    assert reference.count(tok.bos_token_id) == 1
    assert encode_prompt(tok, chat) == reference
    assert encode_prompt(tok, "plain text") == tok("plain text")["input_ids"]  # BOS added once
    # the generator's prompt
    result = llama.generate([GenerationRequest(chat, SamplingParams(max_tokens=12))])[0]
    assert result.n_prompt_tokens == len(reference)
    ids = torch.tensor([reference])
    with torch.no_grad():
        out = llama.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False,
                                   eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id)
    assert result.completions[0].text == tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    # the SFT data: prompt ids, then the completion's
    [(example, n_prompt)] = encode([(chat, "5")], tok, 512)
    assert example[:n_prompt] == reference and example.count(tok.bos_token_id) == 1


def test_greedy_requests_with_n_above_one_are_decoded_once(llama, monkeypatch):
    from openr_transformers import decoding

    decoded = []
    chunk = decoding._decode_chunk
    monkeypatch.setattr(decoding, "_decode_chunk", lambda model, tok, rows, *a, **k: decoded.append(len(rows)) or chunk(model, tok, rows, *a, **k))
    prompt = prompts(1)[0]
    one = llama.generate([GenerationRequest(prompt, SamplingParams(max_tokens=24, stop=(SEP,)))])[0]
    four = llama.generate([GenerationRequest(prompt, SamplingParams(n=4, temperature=0.0, max_tokens=24, stop=(SEP,)))])[0]
    assert four.completions == one.completions * 4 and decoded == [1, 1]
