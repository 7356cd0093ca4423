"""Entry point of openr-serve: the ``openr serve CONFIG`` command (FastAPI is imported when it runs)."""

import click

from openr_core import hookimpl


@click.command("serve")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a config value.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--window-ms", default=20.0, show_default=True, type=click.FloatRange(0),
              help="How long the first waiting request waits for others to share its search round.")
@click.option("--max-batch", default=64, show_default=True, type=click.IntRange(1), help="Most requests in one search round.")
@click.option("--queue-size", default=256, show_default=True, type=click.IntRange(1),
              help="Most requests waiting; more get HTTP 429.")
@click.option("--max-n", default=64, show_default=True, type=click.IntRange(1), help="Largest budget `n` a request may ask for.")
@click.pass_context
def serve(ctx, config, overrides, host, port, window_ms, max_batch, queue_size, max_n):
    """Serve CONFIG's searchers (a search config) as an OpenAI-compatible API: /v1/chat/completions,
    /v1/completions, /v1/models. The first searcher answers unless a request names another."""
    from openr_core.errors import ConfigError
    from openr_core.jobs import load_job_config

    _, cfg = load_job_config(config, overrides, None, ctx)
    if not getattr(cfg, "searchers", None) or not hasattr(cfg, "generator"):
        raise ConfigError(f"{config}: serve needs a search config (task, generator, searchers)")
    import uvicorn

    from openr_search.job import labels
    from openr_serve.app import create_app
    from openr_serve.engine import SearchEngine

    specs = dict(zip(labels(cfg.searchers), cfg.searchers))
    build = lambda spec: spec.build() if spec is not None else None  # noqa: E731
    engine = SearchEngine(build(cfg.task), build(cfg.generator), build(cfg.reward_model), specs,
                          window=window_ms / 1000, max_batch=max_batch, queue_size=queue_size, max_n=max_n)
    click.echo(f"openr serve: {', '.join(specs)} on http://{host}:{port}/v1", err=True)
    uvicorn.run(create_app(engine), host=host, port=port, log_level="warning", timeout_graceful_shutdown=60)


@hookimpl
def register_commands(cli):
    cli.add_command(serve)
