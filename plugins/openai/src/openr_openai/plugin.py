"""Entry point of openr-openai."""

from openr_core import hookimpl


@hookimpl
def register_generators(register):
    register("openai", "openr_openai.generator:OpenAIGenerator",
             doc="Any OpenAI-compatible /v1/completions endpoint: concurrency, retries with backoff, timeouts.")
