"""Loading HF causal LMs and tokenizers the same way everywhere (generator, trainers, PRMs)."""

from __future__ import annotations

import torch
from huggingface_hub.errors import StrictDataclassError
from safetensors import SafetensorError
from transformers import AutoModelForCausalLM, AutoTokenizer

from transformers.utils import logging as hf_logging

from openr_core.errors import ConfigError, DataError
from openr_core.paths import check_local_folder, check_model_folder, resolve_location

hf_logging.disable_progress_bar()
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"device {device!r}: not a torch device (auto, cpu, cuda, cuda:N, mps, ...)") from None
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s) "
                          "visible to torch; use device: auto or cpu")
    return dev


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return DTYPES[dtype]


def load_tokenizer(location: str, revision: str | None = None, trust_remote_code: bool = False):
    tokenizer = load_pretrained(AutoTokenizer, location, "tokenizer", revision=revision, trust_remote_code=trust_remote_code)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_pretrained(auto_class, location: str, what: str = "model", **kwargs):
    """``auto_class.from_pretrained`` for a local folder, ``pkg:`` folder or hub name: a missing
    folder, a corrupt weights file or anything else that stops it loading is one DataError line."""
    (check_local_folder if what == "tokenizer" else check_model_folder)(location, what)
    try:
        return auto_class.from_pretrained(resolve_location(location), **kwargs)
    except (OSError, ValueError, TypeError, StrictDataclassError, SafetensorError) as e:
        # TypeError, StrictDataclassError: a field of config.json (or generation_config.json) of the wrong type
        corrupt = "a .safetensors file is corrupt or cut short: " if isinstance(e, SafetensorError) else ""
        kind = f"{type(e).__name__}: " if isinstance(e, TypeError) else ""
        lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
        detail = lines[0] if not lines[0].endswith(":") else " ".join(lines)[:300]  # "...: " + the cause below
        raise DataError(f"{what} '{location}': cannot load: {corrupt}{kind}{detail}") from None


def load_causal_lm(location: str, *, tokenizer: str | None = None, revision: str | None = None,
                   dtype: str = "auto", device: str = "auto", trust_remote_code: bool = False,
                   threads: int | None = None, train: bool = False):
    """(model, tokenizer) for a local folder, ``pkg:`` folder or hub name."""
    if threads:
        torch.set_num_threads(threads)
    dev = pick_device(device)
    model = load_pretrained(AutoModelForCausalLM, location, revision=revision, dtype=pick_dtype(dtype, dev),
                            trust_remote_code=trust_remote_code)
    model.to(dev)
    model.train(train)
    return model, load_tokenizer(tokenizer or location, revision, trust_remote_code)
