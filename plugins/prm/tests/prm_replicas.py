"""Tiny random-weight replicas of published reward-model checkpoints, built here with
transformers' real classes and tokenizers trained here with each family's conventions.

Nothing is downloaded: the architectures are transformers' own (Mistral, Qwen2, Llama), the
remote-code classes are written below as the checkpoints ship them (a Qwen2 trunk and a
``score`` MLP), and the tokenizers are trained on a small corpus with the family's
pre-tokenizer, special tokens and chat template.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

CORPUS = [
    "Step 1: 3 + 4 = 7 ки\nStep 2: 7 - 2 = 5 ки\nThe answer is 5 ки",
    "Tom has 12 apples. He gives 5 away. How many are left? 12-5=7 and 3+4=7.",
    "We compute $\\frac{1}{2} + \\frac{1}{3} = \\frac{5}{6}$.\n\nSo the answer is \\boxed{5}.\n\n",
    "First, 2 * 6 = 12.\n\nThen 12 + 3 = 15:\n\nTherefore the total is 15.\n\n",
    "Let x = 4. Then x - 1 = 3, so + and - signs matter; a+b, a-b, (a + b) - c.",
    "Please reason step by step, and put your final answer within \\boxed{}.",
] * 20

# Qwen2.5-Math's chat template: a default system prompt when none is given, ChatML turns
QWEN_MATH_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\nPlease reason step by step, and put your final answer within \\\\boxed{}.<|im_end|>\n' }}"
    "{% endif %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

# Llama-3.1's chat template: BOS in the text, a dated system header, contents trimmed
LLAMA31_TEMPLATE = (
    "{{ bos_token }}{{ '<|start_header_id|>system<|end_header_id|>\n\n' }}"
    "{{ 'Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n' }}"
    "{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] | trim }}{% endif %}{{ '<|eot_id|>' }}"
    "{% for message in messages %}{% if message['role'] != 'system' %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")


def _bpe(specials, pre_tokenizer, decoder, vocab_size=400):
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoder
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
                                  if isinstance(pre_tokenizer, pre_tokenizers.ByteLevel) else [])
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def sentencepiece_tokenizer() -> PreTrainedTokenizerFast:
    """Mistral / Math-Shepherd conventions: ``▁`` pieces (a dummy prefix on the first word),
    BOS ``<s>`` added on encode, and both ``▁+`` and ``+`` (``▁-``, ``-``) in the vocabulary."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=False))
    # SentencePiece keeps "\n" out of pieces (Mistral's vocabulary has it as the byte <0x0A>)
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split("\n", behavior="isolated"),
                                                 pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")])
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    vocab = fast.get_vocab()
    assert all(p in vocab for p in ("▁+", "+", "▁-", "-", "▁ки")), "corpus must give both label pieces"
    return fast


def chatml_tokenizer(bos_token: str | None = None) -> PreTrainedTokenizerFast:
    """Qwen2.5 conventions: byte-level BPE (no BOS added; merges may cross ``\\n\\n``), ChatML
    specials, ``<extra_0>``, Qwen2.5-Math's chat template."""
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<extra_0>"]
    tok = _bpe(specials, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False), decoders.ByteLevel())
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token=bos_token, additional_special_tokens=specials[1:])
    fast.chat_template = QWEN_MATH_TEMPLATE
    return fast


def llama3_tokenizer() -> PreTrainedTokenizerFast:
    """Llama-3 conventions: byte-level BPE, header / eot specials, a tokenizer that adds
    ``<|begin_of_text|>`` on encode, Llama-3.1's chat template (which writes BOS itself)."""
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    tok = _bpe(specials, pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel())
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
        special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
                                   additional_special_tokens=specials[2:])
    fast.chat_template = LLAMA31_TEMPLATE
    return fast


def tiny(config_cls, tokenizer, **extra):
    sizes = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512)
    return config_cls(**{**sizes, **extra})


REMOTE_CODE = '''
import torch.nn as nn
from transformers import Qwen2Model, Qwen2PreTrainedModel


class Qwen2ForProcessRewardModel(Qwen2PreTrainedModel):
    """As Qwen2.5-Math-PRM ships it: a Qwen2 trunk, score = Linear -> ReLU -> Linear(2), logits per token."""

    def __init__(self, config):
        super().__init__(config)
        self.model = Qwen2Model(config)
        self.score = nn.Sequential(nn.Linear(config.hidden_size, config.hidden_size), nn.ReLU(),
                                   nn.Linear(config.hidden_size, 2))
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return (self.score(hidden),)


class Qwen2ForRewardModel(Qwen2PreTrainedModel):
    """As Qwen2.5-Math-RM ships it: the score MLP to one value, read at the last token."""

    def __init__(self, config):
        super().__init__(config)
        self.model = Qwen2Model(config)
        self.score = nn.Sequential(nn.Linear(config.hidden_size, config.hidden_size), nn.ReLU(),
                                   nn.Linear(config.hidden_size, 1))
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return (self.score(hidden)[:, -1, 0],)
'''


def save_remote_code(path: Path, config, class_name: str, seed: int):
    """A checkpoint folder with the remote-code class (``auto_map``), as on the hub."""
    import importlib.util
    import sys

    path.mkdir(parents=True, exist_ok=True)
    (path / "modeling_qwen2_rm.py").write_text(REMOTE_CODE)
    spec = importlib.util.spec_from_file_location(f"_replica_rm_{seed}", path / "modeling_qwen2_rm.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    torch.manual_seed(seed)
    model = getattr(module, class_name)(config)
    for p in model.score.parameters():  # visible head weights (init is near zero)
        torch.nn.init.normal_(p, std=0.5)
    model.save_pretrained(path)
    meta = json.loads((path / "config.json").read_text())
    meta["architectures"] = [class_name]
    meta["auto_map"] = {"AutoModel": f"modeling_qwen2_rm.{class_name}"}
    (path / "config.json").write_text(json.dumps(meta))
    return model


def add_tensors(path: Path, tensors: dict):
    """Add weights to a saved checkpoint's safetensors file (Skywork's ``v_head.summary``)."""
    from safetensors.torch import load_file, save_file

    file = path / "model.safetensors"
    state = load_file(file)
    state.update(tensors)
    save_file(state, file, metadata={"format": "pt"})
