"""openr components built on Hugging Face transformers."""
