"""Entry point of openr-search."""

from openr_core import hookimpl


@hookimpl
def register_searchers(register):
    register("greedy", "openr_search.sampling:Greedy", doc="One greedy (temperature 0) solution per problem.")
    register("majority", "openr_search.sampling:Majority", doc="Self-consistency: majority vote over n sampled solutions.")
    register("best-of-n", "openr_search.sampling:BestOfN",
             doc="n sampled solutions scored by a reward model; reducer x selection (max, vote, weighted vote).")
    register("beam", "openr_search.tree:Beam", doc="Step-level beam search: keep the best `width` paths, expand each into `expansions`.")
    register("dvts", "openr_search.tree:DVTS", doc="Diverse verifier tree search: independent subtrees, greedy by PRM within each.")
    register("mcts", "openr_search.mcts:MCTS", doc="MCTS: PUCT selection, k-step expansion, PRM leaf values, backup to the root.")
    register("particle-filter", "openr_search.particles:ParticleFilter",
             doc="Particle filtering: n particles advanced a step at a time, resampled by PRM weight.")
    register("particle-gibbs", "openr_search.particles:ParticleGibbs",
             doc="Particle Gibbs: several particle-filter sweeps, each keeping a reference particle from the last.")
    register("rstar", "openr_search.rstar:RStar",
             doc="rStar: MCTS candidates checked by a second generator completing masked prefixes.")
    register("pav-beam", "openr_search.pav:PAVBeam",
             doc="Beam search ranked by PRM score + alpha x progress (Q - V) under a prover policy.")
    register("compute-optimal", "openr_search.compute_optimal:ComputeOptimal",
             doc="Compute-optimal scaling: a probe estimates difficulty; per bin the strategy learned on dev.")


@hookimpl
def register_commands(cli):
    from openr_core.jobs import job_command
    from openr_search.job import SearchJob, run_search
    from openr_search.rest import RestMCTSJob, run_rest_mcts
    from openr_search.tree_job import TreeDataJob, run_tree_data

    cli.add_command(job_command("search", SearchJob, run_search))
    cli.add_command(job_command("tree-data", TreeDataJob, run_tree_data))
    cli.add_command(job_command("rest-mcts", RestMCTSJob, run_rest_mcts))
