"""openr-rl: RL trainers with process rewards (GRPO, PPO, PRIME, PRL)."""
