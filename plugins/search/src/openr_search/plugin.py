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


@hookimpl
def register_commands(cli):
    from openr_core.jobs import job_command
    from openr_search.job import SearchJob, run_search

    cli.add_command(job_command("search", SearchJob, run_search))
