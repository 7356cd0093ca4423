"""Step labellers for openr: MC rollouts (Math-Shepherd), OmegaPRM binary search, LLM judge, consensus."""
