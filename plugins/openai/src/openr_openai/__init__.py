"""openr generator for OpenAI-compatible completions endpoints."""
