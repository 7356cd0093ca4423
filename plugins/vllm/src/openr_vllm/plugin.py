"""Entry point of openr-vllm (light: vLLM is imported only when a component is built)."""

from openr_core import hookimpl


@hookimpl
def register_generators(register):
    register("vllm", "openr_vllm.generator:VLLMGenerator",
             doc="vLLM offline engine: prefix caching, n samples, seeds, stop strings, logprobs, TP/PP.")


@hookimpl
def register_reward_models(register):
    register("vllm-prm", "openr_vllm.reward:VLLMRewardModel",
             doc="PRMs on vLLM: lm-head (Math-Shepherd), classifier (token head) and implicit formats.")
