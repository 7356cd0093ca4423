"""The `vllm` generator: vLLM's offline engine (``vllm.LLM``) behind the Generator interface.

Same semantics as the `transformers` generator (docs/generation.md): texts exclude the stop
string and are decoded from the generated tokens alone, ``n_tokens`` counts every generated
token (EOS and the token that completed a stop string included), ``stop_reason`` is ``stop`` or
``length``, and logprobs are the raw model distribution's (vLLM's default ``raw_logprobs``).
Prompts go to vLLM as token ids from :func:`openr_core.tokenizing.encode_prompts` (one BOS for a
chat-templated prompt); a greedy request with ``n > 1`` (which vLLM refuses) is decoded once and
its completion repeated ``n`` times.

Seeds: sample ``j`` of a request with seed ``s`` is drawn with vLLM seed ``s * 2**16 + j``
(vLLM gives child ``j`` of an ``n``-sample request the seed ``base + j``), so a sample depends on
its prompt, parameters, seed and index only. Without a seed the base is drawn from torch's
global RNG, as the transformers generator does. The random streams differ from the transformers
generator's, so sampled texts differ between the two; greedy texts are the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from openr_core import Completion, GenerationRequest, GenerationResult, Generator
from openr_core.tokenizing import encode_prompts
from openr_vllm.engine import EngineConfig, prefix_cache_counters, shutdown, start_engine

SEED_STRIDE = 2**16  # samples per request that never share a seed with another request's
SEED_MOD = 2**62


@attrs.frozen(kw_only=True)
class VLLMGeneratorConfig(EngineConfig):
    """Engine settings (see EngineConfig); generation parameters come with each request."""


def base_seed(seed: int | None) -> int:
    if seed is None:
        import torch

        seed = int(torch.randint(0, 2**46, ()).item())
    return (seed * SEED_STRIDE) % SEED_MOD


def sampling_params(vllm, request: GenerationRequest):
    """vLLM's parameters for ``request``. Greedy requests ask for one sample (vLLM refuses n > 1
    at temperature 0; :meth:`VLLMGenerator.generate` copies it n times)."""
    p = request.params
    kwargs = dict(n=p.n if p.temperature > 0 else 1, temperature=p.temperature, top_p=p.top_p if p.temperature > 0 else 1.0,
                  max_tokens=p.max_tokens, stop=list(p.stop) or None, logprobs=0 if p.logprobs else None)
    if p.temperature > 0:
        kwargs["seed"] = base_seed(p.seed)
    return vllm.SamplingParams(**kwargs)


def to_completion(output, tokenizer, stops: tuple[str, ...], want_logprobs: bool) -> Completion:
    ids = list(output.token_ids)
    text = tokenizer.decode(ids, skip_special_tokens=True)
    matched = None
    if output.finish_reason == "stop" and isinstance(output.stop_reason, str):
        found = sorted((text.find(s), s) for s in stops if s in text)
        if found:
            text, matched = text[: found[0][0]], found[0][1]
        else:  # the stop string only appears in vLLM's incremental detokenisation
            text, matched = output.text, output.stop_reason
    logprobs = None
    if want_logprobs and output.logprobs is not None:
        logprobs = tuple(step[token].logprob for token, step in zip(ids, output.logprobs))
    return Completion(text, len(ids), "length" if output.finish_reason == "length" else "stop", logprobs, matched)


class VLLMGenerator(Generator):
    """vLLM offline engine: prefix caching, n samples, seeds, stop strings, logprobs, TP/PP."""

    Config = VLLMGeneratorConfig

    def __init__(self, config=None, **fields):
        super().__init__(config, **fields)
        self.llm = start_engine(self.config)
        self.tokenizer = self.llm.get_tokenizer()
        self._vllm = __import__("vllm")

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        if not requests:
            return []
        params = [sampling_params(self._vllm, r) for r in requests]
        # token ids, so that a prompt starting with BOS (a chat template's) gets no second one
        prompts = [{"prompt_token_ids": ids} for ids in encode_prompts(self.tokenizer, [r.prompt for r in requests])]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        results = []
        for request, out in zip(requests, outputs):
            p = request.params
            completions = tuple(to_completion(o, self.tokenizer, p.stop, p.logprobs)
                                for o in sorted(out.outputs, key=lambda o: o.index))
            if p.temperature <= 0:  # greedy samples are identical: decoded once
                completions = completions * p.n
            results.append(GenerationResult(completions, len(out.prompt_token_ids or ())))
        return results

    def prefix_cache_counters(self) -> tuple[int, int]:
        """(queried, hit) prompt tokens of the automatic prefix cache since the engine started."""
        return prefix_cache_counters(self.llm)

    def close(self) -> None:
        if getattr(self, "llm", None) is not None:
            shutdown(self.llm)
            self.llm = None
