"""Tiny local replicas of a real policy family, for tests that cannot download checkpoints.

:func:`llama3_tokenizer` trains a byte-level BPE tokenizer with Llama-3's conventions: its
pre-tokenizer regex (which keeps newlines after punctuation, so ``".\\n\\n"``, ``":\\n\\n"`` and
``"}\\n\\n"`` become single tokens, as in Llama-3's and Qwen2's vocabularies), its special
tokens, a post-processor that adds ``<|begin_of_text|>`` and Meta-Llama-3-Instruct's chat
template (which writes ``<|begin_of_text|>`` itself). :func:`step_policy` trains a 2-layer
Llama (head size 32, as vLLM's CPU backend needs) for a few seconds on multi-step solutions
separated by blank lines, so that it writes such merged tokens at step ends.
"""

from __future__ import annotations

import random
from pathlib import Path

# Llama-3's pre-tokenizer pattern (tokenizer.json of Meta-Llama-3-8B)
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_SPECIALS = ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
# Meta-Llama-3-8B-Instruct's tokenizer_config.json
LLAMA3_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
SEPARATOR = "\n\n"


def solutions(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(prompt, solution) pairs: blank-line separated steps ending in ``.``, ``:``, ``}`` or a digit."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        steps = [rng.choice(["We add the two numbers.", "Let us add them:", "First, write the sum:"]),
                 f"{a} + {b} = {a + b}",
                 rng.choice([f"So the sum is {a + b}.", f"The total is {a + b}:", f"Hence $x = {a + b}$."]),
                 f"The answer is $\\boxed{{{a + b}}}"]
        out.append((f"Question: what is {a} plus {b}?\nAnswer:\n", SEPARATOR.join(steps) + SEPARATOR))
    return out


def llama3_tokenizer(texts: list[str], vocab_size: int = 600):
    """A fast tokenizer trained on ``texts`` with Llama-3's conventions (see the module doc)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(LLAMA3_SPECIALS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
        special_tokens=[("<|begin_of_text|>", bos)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
        chat_template=LLAMA3_CHAT_TEMPLATE, clean_up_tokenization_spaces=False, model_max_length=256)


def step_policy(out_dir: str | Path, steps: int = 120, seed: int = 0) -> Path:
    """Train a tiny Llama-3-style policy on :func:`solutions` and save it (model + tokenizer) in
    ``out_dir``; deterministic given ``seed``. Its greedy solutions end steps with merged tokens."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    data = solutions(256, seed)
    tokenizer = llama3_tokenizer([p + s for p, s in data])
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.eos_token_id, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    encoded = [tokenizer(p + s)["input_ids"] + [tokenizer.eos_token_id] for p, s in data]
    width = max(map(len, encoded))
    ids = torch.full((len(encoded), width), tokenizer.eos_token_id)
    labels = torch.full((len(encoded), width), -100)
    for i, x in enumerate(encoded):
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(x)] = torch.tensor(x)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    order = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        batch = torch.randint(0, len(encoded), (32,), generator=order)
        loss = model(input_ids=ids[batch], labels=labels[batch]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    out = Path(out_dir)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def step_policy_in(folder: str | Path) -> Path:
    """:func:`step_policy` with its defaults in ``folder/bpe-step-policy``, trained only if that
    folder is not complete yet (test modules of one session share it)."""
    out = Path(folder) / "bpe-step-policy"
    if not (out / "model.safetensors").exists() or not (out / "tokenizer.json").exists():
        step_policy(out)
    return out


def step_task():
    """A Task over :func:`solutions`' problems: blank-line separated steps, answer in ``\\boxed{}``."""
    import re

    from openr_core import Problem, Task

    class StepTask(Task):
        step_separator = SEPARATOR

        def load(self, split, limit=None):
            pairs = solutions(limit or 4, seed=2 if split == "test" else 3)
            return [Problem(f"p{i}", p, re.search(r"boxed\{(\d+)", s).group(1)) for i, (p, s) in enumerate(pairs)]

        def prompt(self, problem):
            return problem.question

        def extract_answer(self, text):
            found = re.findall(r"boxed\{(\d+)", text)
            return found[-1] if found else None

    return StepTask()
