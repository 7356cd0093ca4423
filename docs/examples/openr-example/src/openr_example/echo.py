"""The ``echo`` generator: a deterministic, dependency-free stand-in for a language model."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from openr_core import Completion, GenerationRequest, GenerationResult, Generator


class EchoGenerator(Generator):
    """Returns the prompt's last line, ``repeat`` times (one line each); tokens are whitespace-split words."""

    @attrs.frozen
    class Config:
        repeat: int = attrs.field(default=1, validator=attrs.validators.ge(1))
        """How many times the last line is repeated in each completion."""

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        results = []
        for request in requests:
            lines = request.prompt.rstrip("\n").split("\n")
            text = "\n".join([lines[-1]] * self.config.repeat)
            words = text.split()
            stop_reason = "stop"
            if len(words) > request.params.max_tokens:
                words = words[: request.params.max_tokens]
                text = " ".join(words)
                stop_reason = "length"
            completion = Completion(text=text, n_tokens=len(words), stop_reason=stop_reason)
            results.append(
                GenerationResult(
                    completions=[completion] * request.params.n,
                    n_prompt_tokens=len(request.prompt.split()),
                )
            )
        return results
