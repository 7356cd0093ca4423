"""Entry point of openr-label."""

from openr_core import hookimpl


@hookimpl
def register_labelers(register):
    register("mc", "openr_label.mc:MCLabeler",
             doc="Math-Shepherd: k rollouts from every step prefix; hard = any rollout right, soft = fraction right.")
    register("scan", "openr_label.scan:ScanLabeler",
             doc="SCAN: MC rescaled by the completer's self-confidence; right answers all good, unsure problems dropped.")
    register("omegaprm", "openr_label.omegaprm:OmegaPRMLabeler",
             doc="OmegaPRM: binary search for the first wrong step with cached MC estimates, Q+U solution selection.")
    register("llm-judge", "openr_label.judge:JudgeLabeler",
             doc="A prompted critic names the first wrong step (or -1); unparseable verdicts are dropped.")
    register("consensus", "openr_label.consensus:ConsensusLabeler",
             doc="Keep only solutions on whose first wrong step two labellers agree.")


@hookimpl
def register_reward_models(register):
    register("generative-prm", "openr_label.genprm:GenerativePRM",
             doc="GenPRM/ThinkPRM: a verifier writes a critique and a verdict per step; score = mean verdict.")


@hookimpl
def register_commands(cli):
    from openr_core.jobs import job_command
    from openr_label.compare import CompareJob, run_compare

    cli.add_command(job_command("label-compare", CompareJob, run_compare))
