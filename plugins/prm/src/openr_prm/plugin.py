"""Entry point of openr-prm (light: model code loads only when a component is built)."""

from openr_core import hookimpl


@hookimpl
def register_reward_models(register):
    register("lm-head-prm", "openr_prm.models:LMHeadPRM",
             doc="Math-Shepherd style: P(good token) vs P(bad token) read at a step tag.")
    register("classifier-prm", "openr_prm.models:ClassifierPRM",
             doc="Two-class token head read at step separators (Qwen2.5-Math-PRM layout).")
    register("implicit-prm", "openr_prm.models:ImplicitPRM",
             doc="PRIME implicit PRM: beta * sum of log(pi/pi_ref) over each step's tokens.")
    register("outcome-rm", "openr_prm.models:OutcomeRM",
             doc="Outcome RM: a scalar head read at the end of each step (the last is the outcome score).")


@hookimpl
def register_trainers(register):
    register("prm", "openr_prm.trainer:PRMTrainer",
             doc="Train LM-head, classifier, outcome or implicit PRMs on stepwise data (torch + accelerate).")


@hookimpl
def register_commands(cli):
    from openr_core.jobs import job_command
    from openr_prm.evaljob import EvalPRMJob, run_eval_prm

    cli.add_command(job_command("eval-prm", EvalPRMJob, run_eval_prm))
