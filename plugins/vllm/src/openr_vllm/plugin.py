"""Entry point of openr-vllm (light: vLLM is imported only when a component is built)."""

from openr_core import hookimpl


@hookimpl
def register_generators(register):
    register("vllm", "openr_vllm.generator:VLLMGenerator",
             doc="vLLM offline engine: prefix caching, n samples, seeds, stop strings, logprobs, TP/PP.")

