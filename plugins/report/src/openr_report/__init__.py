"""openr report: a self-contained HTML page per run."""
