"""The sandbox's tokenizer and tiny Llama config, saved as a standard HF model folder.

``python -m openr_arith.model_files OUT_DIR`` writes ``tokenizer.json``, the tokenizer config
and ``config.json``; ``AutoTokenizer.from_pretrained(OUT_DIR)`` and
``AutoConfig.from_pretrained(OUT_DIR)`` load them like any checkpoint. The SFT trainer starts
a policy from such a folder with ``from_scratch: true``. The shipped copy is
``pkg:openr_arith/models/skeleton``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from openr_arith.problems import SYMBOLS, WORDS

SPECIALS = ("[PAD]", "[BOS]", "[EOS]", "[UNK]")
NEWLINE = "\n"


def vocabulary(max_number: int = 199) -> list[str]:
    """Specials, newline, story words, symbols, then every number 0..max_number as one token."""
    return [*SPECIALS, NEWLINE, *WORDS, *SYMBOLS, *(str(i) for i in range(max_number + 1))]


def build_tokenizer(max_number: int = 199):
    """A word-level HF fast tokenizer: numbers are single tokens, newline is a token."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(vocabulary(max_number))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"[ \t\r]+"), behavior="removed"),
        pre_tokenizers.Split(Regex(r"\n"), behavior="isolated"),
        pre_tokenizers.Punctuation(behavior="isolated"),
    ])
    tok.post_processor = processors.TemplateProcessing(single="[BOS] $A", special_tokens=[("[BOS]", vocab["[BOS]"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="[BOS]", eos_token="[EOS]", pad_token="[PAD]", unk_token="[UNK]",
        padding_side="left", clean_up_tokenization_spaces=False, model_max_length=256,
    )


def build_config(tokenizer, hidden_size: int = 128, layers: int = 2, heads: int = 4, intermediate_size: int = 512):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=256, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )


def write_skeleton(out_dir: str | Path, max_number: int = 199, **size) -> Path:
    """Write tokenizer + config (no weights) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(max_number)
    tokenizer.save_pretrained(out)
    build_config(tokenizer, **size).save_pretrained(out)
    return out


if __name__ == "__main__":
    print(write_skeleton(sys.argv[1] if len(sys.argv) > 1 else "skeleton"))
