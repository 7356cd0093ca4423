"""Entry point of openr-transformers (light: the heavy modules load only when used)."""

from openr_core import hookimpl


@hookimpl
def register_generators(register):
    register("transformers", "openr_transformers.generator:TransformersGenerator",
             doc="Any HF causal LM: batched sampling, stop strings, logprobs, shared-prefix KV reuse.")


@hookimpl
def register_trainers(register):
    register("sft", "openr_transformers.sft:SFTTrainer",
             doc="Supervised fine-tuning with completion-only loss (torch + accelerate).")
    register("step-dpo", "openr_transformers.dpo:StepDPOTrainer",
             doc="Step-DPO: DPO on step preference pairs (same prefix, Q-ranked sibling steps) from search trees.")
