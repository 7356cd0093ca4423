"""openr components on vLLM's offline engine."""
