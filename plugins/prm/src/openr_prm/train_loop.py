"""The PRM training loop (imported only when training runs)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch

from openr_core.errors import ConfigError, DataError
from openr_core.jsonl import read_jsonl
from openr_core.labelling import label_problems, read_labels
from openr_core.types import LabelledExample, Problem, ScoreRequest, to_dict
from openr_prm import metrics
from openr_prm.augment import Augmenter, PoolAugmenter, delta_at, is_gold, labelled_copies
from openr_prm.data import load_stepwise
from openr_prm.heads import HEADS, Head, LMHead
from openr_prm.scoring import Scorer
from openr_transformers.training import (Checkpoints, Clock, RunLog, Session, batch_indices, lr_factor,
                                         optimiser_step, save_final, save_model)


def training_examples(config, run) -> tuple[list[LabelledExample], list[LabelledExample]]:
    """(train, dev) examples: from files, or labelled now with the run's labeler (resumable)."""
    if config.data:
        train = [e for path in config.data for e in load_stepwise(path, config.format)]
        return train, [e for path in config.dev_data for e in load_stepwise(path, config.format)]
    if run.task is None or run.component("labeler") is None:
        raise ConfigError("trainer prm: set `data:` or give the job a `task:` and a `labeler:` (and a `generator:`)")
    out = Path(run.output_dir) / "data"
    train = read_labels(label_problems(run, run.task.load(config.split, config.problems), 64, out / config.split))
    dev = []
    if config.dev_problems:
        dev = read_labels(label_problems(run, run.task.load(config.dev_split, config.dev_problems), 64, out / config.dev_split))
    return train, dev


def copies_pool(config, run, train: list[LabelledExample]) -> list[LabelledExample]:
    """``augment_pool`` perturbed copies of the training set's correct solutions labelled by the
    job's labeller, kept in ``OUTPUT/data/augment.jsonl`` (read back when present)."""
    path = Path(run.output_dir) / "data" / "augment.jsonl"
    if path.is_file():
        return read_labels(read_jsonl(path))
    labeler = run.component("labeler")
    if run.task is None or labeler is None or not hasattr(labeler, "label_solutions"):
        raise ConfigError("trainer prm: augment_labels: labeler needs a `task:` and a `labeler:` with label_solutions")
    problems = {p.id: p for p in run.task.load(config.split, config.problems)}
    t0 = time.perf_counter()
    pool = labelled_copies([e for e in train if is_gold(e)], problems, labeler, run.task, run.generator,
                           config.augment_pool, *config.augment_range, run.seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".jsonl.tmp")  # a kill while writing leaves no half pool to read back
    tmp.write_text("".join(json.dumps(to_dict(e)) + "\n" for e in pool))
    tmp.replace(path)
    print(json.dumps({"augment_pool": len(pool), "pool_good_fraction": round(
        sum(sum(e.labels) for e in pool) / max(1, sum(len(e.labels) for e in pool)), 4),
        "pool_seconds": round(time.perf_counter() - t0, 1)}), flush=True)
    return pool


def ensure_marker(head: Head, config, model, tokenizer) -> None:
    """Add the head's step tag / separator (and LM-head label tokens) to the vocabulary when the
    base model lacks them."""
    missing = []
    for text in filter(None, head.tokens_to_learn()):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids or (tokenizer.unk_token_id is not None and tokenizer.unk_token_id in ids):
            missing.append(text)
    if missing:
        old = model.get_input_embeddings().weight.detach().clone()
        tokenizer.add_tokens(missing, special_tokens=head.special_marker)
        model.resize_token_embeddings(len(tokenizer))
        tag = head.marker.strip()
        if config.tag_init and tag in missing:
            source = config.join if config.tag_init == "join" else config.tag_init
            ids = tokenizer(source, add_special_tokens=False)["input_ids"]
            if len(ids) != 1:
                raise ConfigError(f"trainer prm: tag_init {config.tag_init!r} must be one token, got {len(ids)}")
            with torch.no_grad():
                model.get_input_embeddings().weight[tokenizer.convert_tokens_to_ids(tag)] = old[ids[0]]
        head.init_new_tokens(model, tokenizer, missing, old)


def deepen(model, extra_layers: int) -> None:
    """Append decoder layers that start as the identity (their residual writers are zero).

    A verifier must compare a step's result with the result its backbone computes at the
    step's '=' (or equivalent) token; in a shallow backbone that computation finishes in the
    last layer, where no later position can read it. Extra layers on top let the read position
    attend to the finished computation. Works for decoder models with ``base_model.layers``
    (Llama, Qwen2, Mistral, ...).
    """
    if not extra_layers:
        return
    layers = model.base_model.layers
    config = model.config
    layer_cls = type(layers[0])
    for _ in range(extra_layers):
        layer = layer_cls(config, len(layers))
        layer.apply(model._init_weights)
        for name, param in layer.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                torch.nn.init.zeros_(param)
        layers.append(layer.to(next(model.parameters()).dtype))
    config.num_hidden_layers = len(layers)
    if getattr(config, "layer_types", None):
        config.layer_types = list(config.layer_types) + [config.layer_types[-1]] * extra_layers


def route_heads(model, tokenizer, layouts: list, config, sample: int = 300) -> None:
    """Start every head of the first added layer attending from each read position (the step
    tag) to the nearest ``route_token`` ``route_offset`` positions back, copying that position's
    (normalised) state into the tag's residual (gain ``route_gain``); then, with ``route_back``,
    the next added layer's heads each reading one position that many tokens before the tag.

    Attention learned from scratch starts uniform, and on arith the PRM never learned to read
    the step's computed result (docs/prm.md). Here keys and queries are least-squares
    detectors of the route token and of the read positions, fitted on the layer's inputs over
    ``sample`` training solutions, and RoPE's fixed rotation for a fixed offset is built into the
    keys of the five highest-frequency pairs, so the score peaks at that offset. Llama-style
    decoders (q/k/v/o projections, rotary ``inv_freq``) whose heads tile the hidden size.

    ``route_back`` heads (one offset per head, cycling) detect "the position OFFSET before a read
    position" instead of a token: on arith the states 4, 5 and 6 tokens before a step's tag are
    where the backbone predicts the step's operand, operator and start, which a check of the
    step's arithmetic (the ``=`` route) never sees. Each head's values copy its slice of that
    state and the layer's output starts at zero, so the layer starts as the identity and training
    decides what the tag takes from those positions.
    """
    from openr_prm.heads import pad

    layers = model.base_model.layers
    first = len(layers) - config.extra_layers
    hidden = model.config.hidden_size
    head_dim = getattr(model.config, "head_dim", None) or hidden // model.config.num_attention_heads
    heads = model.config.num_attention_heads
    if heads * head_dim != hidden or layers[first].self_attn.k_proj.weight.shape[0] != hidden:
        raise ConfigError("trainer prm: route_token needs heads that tile the hidden size and no grouped keys")
    token = tokenizer.convert_tokens_to_ids(config.route_token)
    if token is None or token == tokenizer.unk_token_id:
        raise ConfigError(f"trainer prm: route_token {config.route_token!r} is not one token of the vocabulary")
    back = tuple(getattr(config, "route_back", ()) or ())
    if back and config.extra_layers < 2:
        raise ConfigError("trainer prm: route_back needs extra_layers of 2 or more (it routes the second added layer)")
    chosen = layouts[:sample]
    ids, mask = pad(chosen, tokenizer.pad_token_id, next(model.parameters()).device)
    valid = mask.bool()
    read = torch.zeros_like(valid)
    for b, layout in enumerate(chosen):
        read[b, list(layout.read_positions)] = True
    inv_freq = model.base_model.rotary_emb.inv_freq.float()

    def point(attn, h, queries, keys, offset):
        r = h * head_dim
        for i in range(min(5, head_dim // 2)):
            angle = offset * inv_freq[i].item()
            attn.q_proj.weight[r + i] = config.route_scale * queries
            attn.k_proj.weight[r + i] = config.route_scale * math.cos(angle) * keys
            attn.k_proj.weight[r + i + head_dim // 2] = config.route_scale * math.sin(angle) * keys

    x = _layer_inputs(model, layers[first], ids, mask)
    keys = _detector(x[valid], (ids == token)[valid])
    queries = _detector(x[read], torch.ones(int(read.sum()), dtype=torch.bool))
    attn = layers[first].self_attn
    with torch.no_grad():
        for proj in (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj):
            proj.weight.zero_()
        for h in range(heads):
            point(attn, h, queries, keys, config.route_offset)
        attn.v_proj.weight.copy_(torch.eye(hidden))
        attn.o_proj.weight.copy_(config.route_gain * torch.eye(hidden))
    if not back:
        return
    x = _layer_inputs(model, layers[first + 1], ids, mask)
    queries = _detector(x[read], torch.ones(int(read.sum()), dtype=torch.bool))
    attn = layers[first + 1].self_attn
    with torch.no_grad():
        for proj in (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj):
            proj.weight.zero_()
        for h in range(heads):
            offset = back[h % len(back)]
            before = torch.zeros_like(valid)
            before[:, :-offset] = read[:, offset:]
            point(attn, h, queries, _detector(x[valid], before[valid]), offset)
        attn.v_proj.weight.copy_(torch.eye(hidden))


def _layer_inputs(model, layer, ids, mask):
    """The normed inputs of ``layer``'s attention over a batch (float32)."""
    captured = []
    hook = layer.input_layernorm.register_forward_hook(lambda m, i, o: captured.append(o.detach()))
    try:
        with torch.no_grad():
            model(input_ids=ids, attention_mask=mask)
    finally:
        hook.remove()
    return captured[0].float()


def _detector(x, where):
    """Least-squares weights w with x @ w ≈ 1 where ``where`` holds and 0 elsewhere. gelsd (SVD,
    minimum-norm solution): the default gelsy gives different answers on repeated calls when the
    normed hidden states are rank-deficient, which made runs irreproducible."""
    return torch.linalg.lstsq(x, where.float()[:, None], driver="gelsd").solution[:, 0]


def param_groups(model, config) -> list[dict]:
    """Parameter groups by learning rate: ``lr`` by default; with ``extra_layers``, the base's own
    parameters at ``base_lr`` and the first added layer's queries and keys (its attention
    pattern, which ``route_heads`` builds) at ``route_lr`` when set. A
    rate of 0 freezes those parameters (left out of every group)."""
    rates: dict[int, float] = {}
    if config.extra_layers:
        layers = list(model.base_model.layers)
        new = {id(p) for layer in layers[-config.extra_layers:] for p in layer.parameters()}
        if config.base_lr is not None:
            rates.update({id(p): config.base_lr for p in model.parameters() if id(p) not in new})
        if config.route_lr is not None:
            routed = layers[-config.extra_layers:][: 2 if getattr(config, "route_back", ()) else 1]
            rates.update({id(p): config.route_lr for layer in routed
                          for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj) for p in proj.parameters()})
    groups: dict[float | None, list] = {None: []}
    for p in model.parameters():
        rate = rates.get(id(p))
        if rate == 0:
            p.requires_grad_(False)
        elif p.requires_grad:
            groups.setdefault(rate, []).append(p)
    return [{"params": ps} if rate is None else {"params": ps, "lr": rate} for rate, ps in groups.items() if ps]


def as_request(example: LabelledExample, index: int, steps=None) -> ScoreRequest:
    return ScoreRequest(Problem(example.problem_id or f"example-{index}", example.prompt),
                        steps if steps is not None else example.completions)


def aux_targets(example: LabelledExample, tokenizer) -> list[int]:
    """Per step, the first token where the gold step that a perturbed copy replaced differs from
    the written one (-100 elsewhere: a step as written, or one whose correct version is unknown).
    For a changed result that is the right result; for a consistent corruption
    (``augment_corrupt``) the right start, operator or operand. Only replaced steps get a target:
    at a correct step the written token is the answer, and copying it is a shortcut that teaches
    nothing."""
    gold = example.meta.get("gold_steps")
    out = []
    for k, step in enumerate(example.completions):
        text = gold[k] if gold is not None and k < len(gold) and gold[k] != step else None
        want = tokenizer(" " + text.strip(), add_special_tokens=False)["input_ids"] if text else []
        have = tokenizer(" " + step.strip(), add_special_tokens=False)["input_ids"] if text else []
        first = next((w for w, h in zip(want, have) if w != h), None)
        if first is None and want:
            first = want[len(have)] if len(want) > len(have) else want[-1]
        out.append(-100 if first is None else first)
    return out


def aux_loss(raw: torch.Tensor, example: LabelledExample, tokenizer) -> torch.Tensor:
    targets = torch.tensor(aux_targets(example, tokenizer)[: raw.shape[0]], device=raw.device)
    if (targets == -100).all():
        return raw.sum() * 0.0
    return torch.nn.functional.cross_entropy(raw, targets, ignore_index=-100)


def truncate(example: LabelledExample, keep_after_error: bool) -> LabelledExample:
    if keep_after_error or example.first_error == -1:
        return example
    k = example.first_error + 1
    soft = example.soft_labels[:k] if example.soft_labels else None
    return LabelledExample(example.prompt, example.completions[:k], example.labels[:k], soft, example.problem_id, example.meta)


def evaluate(scorer: Scorer, examples: list[LabelledExample]) -> dict:
    scored = scorer.score([as_request(e, i) for i, e in enumerate(examples)])
    scores = [list(s.scores) for s in scored]
    labels = [e.first_error for e in examples]
    threshold, f1 = metrics.tune_threshold(scores, labels)
    fixed = metrics.processbench([metrics.predict_first_error(s, 0.5) for s in scores], labels)
    flat, good = [], []
    for s, e in zip(scores, examples):  # steps up to and including the first error (labels known)
        k = len(s) if e.first_error == -1 else e.first_error + 1
        flat += s[:k]
        good += list(e.labels[:k])
    r = metrics.rounded  # None where the dev set lacks erroneous or correct samples
    return {"dev_f1_at_0.5": r(fixed["f1"]), "dev_error_accuracy": r(fixed["error_accuracy"]),
            "dev_correct_accuracy": r(fixed["correct_accuracy"]), "dev_f1_tuned": r(f1),
            "dev_threshold": threshold, "dev_auroc": round(metrics.auroc(flat, good), 4)}


def train_prm(config, run) -> str:
    head = HEADS[config.kind].from_fields(config)
    if config.aux_weight and not isinstance(head, LMHead):
        raise ConfigError("trainer prm: aux_weight needs kind lm-head")
    out = Path(run.output_dir)
    session = Session(config, run.seed)
    accelerator = session.accelerator
    session.require_divisible("batch_size", config.batch_size)
    with accelerator.main_process_first():  # the main process labels (and writes); the others read back
        train, dev = training_examples(config, run)
    train = [truncate(e, config.steps_after_first_error) for e in train if e.completions]
    if config.hrm_merge:
        from openr_prm.hierarchical import compress

        train = compress(train, config.hrm_merge, config.join, run.seed)
    if not train:
        raise DataError("trainer prm: no training examples")
    models, tokenizer = head.load(train=True)
    model = models["model"]
    deepen(model, config.extra_layers)
    ensure_marker(head, config, model, tokenizer)
    head.setup(tokenizer)
    layouts = head.layouts(tokenizer, [as_request(e, i) for i, e in enumerate(train)])
    if config.route_back and (not config.route_token or min(config.route_back) < 1):
        raise ConfigError(f"trainer prm: route_back needs route_token and offsets of 1 or more, got {list(config.route_back)}")
    if config.route_token:
        if not config.extra_layers:
            raise ConfigError("trainer prm: route_token needs extra_layers")
        route_heads(model, tokenizer, layouts, config)
    augmenter, n_synthetic = None, round(config.batch_size * config.augment)
    session.require_divisible("batch_size x augment", n_synthetic)
    if n_synthetic and config.augment_labels == "labeler":
        with accelerator.main_process_first():
            augmenter = PoolAugmenter(copies_pool(config, run, train), run.seed)
    elif n_synthetic:
        augmenter = Augmenter(train, run.task, *config.augment_range, run.seed, config.augment_corrupt)
    optimizer = torch.optim.AdamW(param_groups(model, config), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(config, s, config.steps))
    checkpoints = Checkpoints(out / "checkpoints", "step", session)
    start = 0
    resume = checkpoints.latest()
    if resume is not None:
        path, state = resume
        load_weights(model, path)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = state["step"]
        if session.is_main:
            print(f"resuming from {path} at step {start}", flush=True)
    model, optimizer = accelerator.prepare(model, optimizer)
    models["model"] = model
    plain = {**models, "model": accelerator.unwrap_model(model)}  # evaluation: no DDP collectives
    log = RunLog(out, "step", start, session.is_main)
    if start == 0:
        stats = {"train_examples": len(train), "dev_examples": len(dev),
                 "train_steps_labelled": sum(len(e.labels) for e in train),
                 "train_good_fraction": sum(sum(e.labels) for e in train) / max(1, sum(len(e.labels) for e in train))}
        log.write(stats)
    clock = Clock()
    for step in range(start, config.steps):
        idx = batch_indices(len(train), step, config.batch_size - n_synthetic, run.seed)
        batch = session.share([train[i] for i in idx])
        batch_layouts = session.share([layouts[i] for i in idx])
        if augmenter:
            span = config.augment_range[1] - config.augment_range[0]
            bound = delta_at(step, config.steps, config.augment_delta_start, config.augment_delta_end, span)
            drawn = session.share(augmenter.draw(step, n_synthetic, bound))
            synthetic = [truncate(e, config.steps_after_first_error) for e in drawn]
            batch += synthetic
            batch_layouts += head.layouts(tokenizer, [as_request(e, i) for i, e in enumerate(synthetic)])
        loss, aux = batch_loss(head, models, batch, batch_layouts, tokenizer, config)
        optimiser_step(accelerator, model, optimizer, loss, config.max_grad_norm, scheduler)
        done = step + 1
        record = None
        if done % config.log_every == 0 or done == config.steps:
            record = {"step": done, "loss": round(session.mean(loss.item()), 5), "lr": scheduler.get_last_lr()[0],
                      "seconds": clock(1)}
            if aux is not None:
                record["aux_loss"] = round(session.mean(aux.item()), 5)
        if dev and config.eval_every and (done % config.eval_every == 0 or done == config.steps) and session.is_main:
            model.eval()
            record = {**(record or {"step": done}), **evaluate(Scorer(head, plain, tokenizer), dev)}
            model.train()
        if record:
            log.write(record)
        if config.save_every and done % config.save_every == 0 and done < config.steps:
            weights = session.full_weights(model)
            checkpoints.save(done, lambda folder: save_model(folder, plain["model"], tokenizer, weights),
                             {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": done})
    log.close()
    weights = session.full_weights(model)
    return save_final(session, out, lambda folder: save_model(folder, plain["model"], tokenizer, weights))


def batch_loss(head: Head, models: dict, batch: list[LabelledExample], layouts: list, tokenizer,
               config) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(loss, auxiliary loss or None) of one batch: ``head``'s objective at the positions inference
    reads scores from, averaged over this process's share of the global batch (with several
    processes DDP averages the gradients, so the step is the one-process step)."""
    if config.aux_weight:
        full = head.raw(models, layouts, tokenizer.pad_token_id, full_vocab=True)
        raw = [f[:, [head.good, head.bad]] for f in full]
        aux = torch.stack([aux_loss(f, e, tokenizer) for f, e in zip(full, batch)]).mean()
    else:
        raw = head.raw(models, layouts, tokenizer.pad_token_id)
        aux = None
    loss = torch.stack([head.loss(r, e, config.soft_labels) for r, e in zip(raw, batch)]).mean()
    if aux is not None:
        loss = loss + config.aux_weight * aux
    return loss, aux


def load_weights(model, folder: Path) -> None:
    """Load a checkpoint's weights (``save_pretrained`` layout, one file or shards; tied weights
    are saved once) into ``model``, which must already have the checkpoint's architecture."""
    from safetensors.torch import load_file, load_model

    single = folder / "model.safetensors"
    if single.is_file():
        load_model(model, single, strict=True, device="cpu")
        return
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    state = {}
    for name in sorted(set(index["weight_map"].values())):
        state.update(load_file(folder / name))
    missing, unexpected = model.load_state_dict(state, strict=False)
    current = model.state_dict()
    loaded = {current[k].data_ptr() for k in state if k in current}
    untied = [k for k in missing if current[k].data_ptr() not in loaded]
    if unexpected or untied:
        raise DataError(f"{folder}: checkpoint does not match the model (missing {untied[:3]}, unexpected {unexpected[:3]})")

