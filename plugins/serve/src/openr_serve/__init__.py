"""openr serve: PRM-guided search behind an OpenAI-compatible endpoint."""
