"""Loading HF causal LMs and tokenizers the same way everywhere (generator, trainers, PRMs)."""

from __future__ import annotations

import torch
from safetensors import SafetensorError
from transformers import AutoModelForCausalLM, AutoTokenizer

from transformers.utils import logging as hf_logging

from openr_core.errors import DataError
from openr_core.paths import check_local_folder, resolve_location

hf_logging.disable_progress_bar()
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return DTYPES[dtype]


def load_tokenizer(location: str, revision: str | None = None, trust_remote_code: bool = False):
    check_local_folder(location, "tokenizer")
    path = resolve_location(location)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise DataError(f"tokenizer '{location}': cannot load: {str(e).splitlines()[0]}") from None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(location: str, *, tokenizer: str | None = None, revision: str | None = None,
                   dtype: str = "auto", device: str = "auto", trust_remote_code: bool = False,
                   threads: int | None = None, train: bool = False):
    """(model, tokenizer) for a local folder, ``pkg:`` folder or hub name."""
    if threads:
        torch.set_num_threads(threads)
    dev = pick_device(device)
    check_local_folder(location)
    path = resolve_location(location)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, revision=revision, dtype=pick_dtype(dtype, dev), trust_remote_code=trust_remote_code)
    except (OSError, ValueError, SafetensorError) as e:
        corrupt = "a .safetensors file is corrupt or cut short: " if isinstance(e, SafetensorError) else ""
        raise DataError(f"model '{location}': cannot load: {corrupt}{str(e).splitlines()[0]}") from None
    model.to(dev)
    model.train(train)
    return model, load_tokenizer(tokenizer or location, revision, trust_remote_code)
