"""Entry point of openr-rl (light: torch loads only when a trainer runs)."""

from openr_core import hookimpl


@hookimpl
def register_trainers(register):
    register("grpo", "openr_rl.trainers:GRPOTrainer",
             doc="GRPO with outcome, per-step PRM (DeepSeekMath process supervision) or mixed rewards.")
    register("ppo", "openr_rl.trainers:PPOTrainer",
             doc="PPO with a value model and GAE; PRM step rewards on each step's last token.")
    register("prime", "openr_rl.trainers:PRIMETrainer",
             doc="PRIME: online implicit PRM (cross-entropy on outcomes) + leave-one-out baselines.")
    register("prl", "openr_rl.trainers:PRLTrainer",
             doc="Process Reward Learning: step rewards from the outcome and the per-step KL to the reference.")
