"""PRM-guided search for openr: every searcher batches all problems into each round."""
