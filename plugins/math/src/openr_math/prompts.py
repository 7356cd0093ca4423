"""Prompt templates. ``{question}`` is replaced literally (no ``str.format``: LaTeX has braces)."""

from __future__ import annotations

COT_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."

TEMPLATES = {
    # Qwen2.5-Math's CoT prompt ("qwen25-math-cot" in its evaluation harness): ChatML with the
    # step-by-step / \boxed{} system message.
    "qwen-math-cot": (
        "<|im_start|>system\n" + COT_INSTRUCTION + "<|im_end|>\n"
        "<|im_start|>user\n{question}<|im_end|>\n"
        "<|im_start|>assistant\n"
    ),
    # No chat markup: for base models.
    "plain": "{question}\n" + COT_INSTRUCTION + "\n\n",
}

CHAT = "chat"
NAMES = (*TEMPLATES, CHAT)


def check_template(value: str) -> None:
    """A template is a name from :data:`NAMES` or a custom string containing ``{question}``."""
    if value not in NAMES and "{question}" not in value:
        raise ValueError(
            f"prompt_template must be one of {', '.join(NAMES)} or a string containing "
            f"'{{question}}', got {value!r}"
        )


def render(template: str, question: str) -> str:
    return TEMPLATES.get(template, template).replace("{question}", question)


class ChatPrompter:
    """Builds prompts with a tokenizer's chat template (transformers imported on first use)."""

    def __init__(self, tokenizer_path: str, system_prompt: str | None):
        self.tokenizer_path = tokenizer_path
        self.system_prompt = system_prompt
        self._tokenizer = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from openr_core.errors import ConfigError, DataError

            try:
                from transformers import AutoTokenizer
            except ImportError as e:
                raise ConfigError(
                    f"prompt_template 'chat' needs transformers (pip install 'openr-math[chat]'): {e}"
                ) from None
            try:
                tok = AutoTokenizer.from_pretrained(self.tokenizer_path)
            except Exception as e:  # noqa: BLE001 - one line naming the path
                raise DataError(
                    f"cannot load tokenizer '{self.tokenizer_path}': {type(e).__name__}: {e}"
                ) from None
            if not getattr(tok, "chat_template", None):
                raise DataError(f"tokenizer '{self.tokenizer_path}' has no chat template")
            self._tokenizer = tok
        return self._tokenizer

    def render(self, question: str) -> str:
        messages = []
        if self.system_prompt:
            messages.append({"role": "system", "content": self.system_prompt})
        messages.append({"role": "user", "content": question})
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
