"""Entry point of the openr-arith plugin."""

from openr_core import hookimpl


@hookimpl
def register_tasks(register):
    register("arith", "openr_arith.task:ArithTask", doc="Multi-step arithmetic word problems with an exact step verifier.")


@hookimpl
def register_labelers(register):
    register("arith-truth", "openr_arith.truth:ArithTruthLabeler",
             doc="Exact step labels from the task's verifier for the policy's own sampled solutions.")


@hookimpl
def register_reward_models(register):
    register("arith-oracle", "openr_arith.truth:ArithOracle",
             doc="Exact step correctness from the sandbox verifier: the upper bound for any PRM.")
