"""Process reward models for openr: scoring, training and evaluation."""
