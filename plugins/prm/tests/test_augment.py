import json
import random
import re

import pytest
from click.testing import CliRunner

from openr_core.cli import cli
from openr_core.errors import ConfigError
from openr_core.types import LabelledExample, to_dict
from openr_prm.augment import Augmenter, PoolAugmenter, delta_at, labelled_copies, perturb_number, perturbed_copy

BACKBONE = "pkg:openr_arith/models/backbone"


def golds(task, split, n):
    return [LabelledExample(p.question, p.meta["solution"].split("\n"), [True] * len(p.meta["solution"].split("\n")),
                            None, p.id, {"outcome": True}) for p in task.load(split, n)]


def test_perturb_number_changes_the_last_integer_within_bounds():
    rng = random.Random(0)
    for _ in range(300):
        out = perturb_number("12 + 5 = 17", rng, 0, 199)
        head, value = out.rsplit(" ", 1)
        assert head == "12 + 5 =" and value != "17" and 0 <= int(value) <= 199
        near = int(perturb_number("12 + 5 = 17", rng, 0, 199, max_delta=2).rsplit(" ", 1)[1])
        assert near in (15, 16, 18, 19)
    assert perturb_number("answer 0", rng, 0, 199, max_delta=1) == "answer 1"
    assert perturb_number("no numbers here", rng, 0, 199) is None
    assert perturb_number("x = 3", rng, 3, 3) is None  # nothing else allowed


def test_labelled_copies_take_the_labellers_labels_not_the_verifiers(arith):
    class FirstStepBad:  # a labeller that disagrees with the verifier: every copy wrong at step 0
        def label_solutions(self, problems, solutions, *, task, generator):
            return [LabelledExample(p.question, s, [False] * len(s), None, p.id) for p, sols in zip(problems, solutions)
                    for s in sols]

    gold = golds(arith, "train", 5)
    problems = {p.id: p for p in arith.load("train", 5)}
    pool = labelled_copies(gold, problems, FirstStepBad(), arith, None, 40, 0, 199, seed=3)
    assert len(pool) == 40 and all(e.first_error == 0 for e in pool)
    by_id = {g.problem_id: g for g in gold}
    for copy in pool:
        k = copy.meta["perturbed_step"]
        assert list(copy.meta["gold_steps"]) == list(by_id[copy.problem_id].completions)
        assert copy.completions[k] != copy.meta["gold_steps"][k]
    draws = PoolAugmenter(pool, 0)
    assert draws.draw(7, 8) == draws.draw(7, 8) and all(e in pool for e in draws.draw(7, 8))


def test_perturbed_copies_are_labelled_by_the_verifier(arith):
    rng = random.Random(1)
    for gold in golds(arith, "train", 30):
        copy = perturbed_copy(gold, arith, rng, 0, 199, max_delta=3)
        k = copy.meta["perturbed_step"]
        assert copy.completions[:k] == gold.completions[:k] and copy.completions[k] != gold.completions[k]
        assert copy.labels == tuple(i < k for i in range(len(gold.completions)))  # a changed result is always wrong
        assert copy.first_error == k


def test_delta_schedule_moves_from_far_to_near():
    assert delta_at(0, 100, None, None, 199) is None
    assert delta_at(0, 100, None, 2, 199) == 199 and delta_at(99, 100, None, 2, 199) == 2
    assert delta_at(49, 99, 10, 2, 199) == 6
    assert delta_at(5, 100, 4, 4, 199) == 4


def test_augmenter_is_deterministic_and_needs_a_verifying_task(arith):
    train = golds(arith, "train", 20)
    a, b = Augmenter(train, arith, 0, 199, 3), Augmenter(train, arith, 0, 199, 3)
    assert [e.completions for e in a.draw(7, 5, None)] == [e.completions for e in b.draw(7, 5, None)]
    assert [e.completions for e in a.draw(7, 5, None)] != [e.completions for e in a.draw(8, 5, None)]
    with pytest.raises(ConfigError):
        Augmenter(train, None, 0, 199, 0)
    with pytest.raises(ConfigError):
        Augmenter([LabelledExample("q", ["1 + 1 = 3"], [False])], arith, 0, 199, 0)


def test_augment_corrupt_draws_consistent_errors_with_exact_labels(arith):
    """Half the copies are the task's consistent corruptions: the first error is a wrong start,
    operand, operation or answer placement, never a miscomputed step, and the labels are the
    verifier's (steps before the first error good, the rest bad)."""
    from openr_arith import problems as P
    from openr_core.types import Problem

    train = golds(arith, "train", 50)
    drawn = Augmenter(train, arith, 0, 199, seed=3, corrupt=0.5).draw(step=7, n=40, max_delta=None)
    corrupted = [c for c in drawn if c.meta.get("corrupted")]
    assert len(corrupted) == 20 and len(drawn) == 40
    kinds = set()
    for c in corrupted:
        problem = Problem(c.problem_id, c.prompt)
        k = arith.first_error(problem, c.completions)
        assert k >= 0 and list(c.labels) == [i < k for i in range(len(c.completions))]
        kinds.add(arith.error_type(problem, c.completions))
        for step in c.completions[:k + 1]:  # every operation step computes what it writes
            m = re.fullmatch(r"(\d+) ([-+*]) (\d+) = (\d+)", step)
            if m:
                assert P.apply(int(m[1]), m[2], int(m[3])) == int(m[4])
    assert "arithmetic" not in kinds and kinds & {"wrong start", "wrong operation/operand"}
    assert Augmenter(train, arith, 0, 199, seed=3, corrupt=0.5).draw(7, 40, None) == drawn  # seeded per step

    class NoCorruptions(type(arith)):
        def corrupted_solution(self, problem, rng):
            return None

    with pytest.raises(ConfigError, match="augment_corrupt"):
        Augmenter(train, NoCorruptions(), 0, 199, seed=3, corrupt=0.5)


def test_training_with_augmentation_from_files(tmp_path, arith):
    data, dev = tmp_path / "train.jsonl", tmp_path / "dev.jsonl"
    data.write_text("".join(json.dumps(to_dict(e)) + "\n" for e in golds(arith, "train", 40)))
    rng = random.Random(0)
    dev_examples = [perturbed_copy(e, arith, rng, 0, 199) for e in golds(arith, "dev", 10)] + golds(arith, "dev", 5)
    dev.write_text("".join(json.dumps(to_dict(e)) + "\n" for e in dev_examples))
    config = tmp_path / "prm.yaml"
    config.write_text(json.dumps({"job": "train", "seed": 0, "task": {"type": "arith"}, "trainer": {
        "type": "prm", "kind": "lm-head", "model": BACKBONE, "data": [str(data)], "dev_data": [str(dev)],
        "good_token": "good", "bad_token": "bad", "extra_layers": 1, "steps": 2, "batch_size": 8,
        "augment": 0.5, "augment_delta_start": 50, "augment_delta_end": 2, "steps_after_first_error": False,
        "aux_weight": 0.5, "base_lr": 0.0001,
        "eval_every": 2, "log_every": 1, "threads": 1}}))
    result = CliRunner().invoke(cli, ["run", str(config), "-o", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    log = [json.loads(line) for line in (tmp_path / "out" / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 2 and 0.0 <= log[-1]["dev_auroc"] <= 1.0 and "dev_f1_tuned" in log[-1]
    assert log[-1]["aux_loss"] >= 0


def test_aux_targets_are_the_first_token_where_the_correct_step_differs():
    from openr_prm.train_loop import aux_targets
    from openr_transformers.loading import load_tokenizer

    tok = load_tokenizer(BACKBONE)
    ids = lambda *t: [tok.convert_tokens_to_ids(x) for x in t]  # noqa: E731
    copy = LabelledExample("q", ["93 + 1 = 95", "answer 95"], [False, False], None, None,
                           {"gold_steps": ["93 + 1 = 94", "answer 94"]})
    assert aux_targets(copy, tok) == ids("94", "94")
    copy = LabelledExample("q", ["93 + 1 = 94", "answer 95"], [True, False], None, None,
                           {"gold_steps": ["93 + 1 = 94", "answer 94"]})
    assert aux_targets(copy, tok) == [-100] + ids("94")  # an unchanged step gets no target
    sampled = LabelledExample("q", ["93 + 1 = 94", "94 - 7 = 88"], [True, False])
    assert aux_targets(sampled, tok) == [-100, -100]  # no gold steps known
    # a consistent corruption: the target is the first token that differs (the right start / operand)
    corrupt = LabelledExample("q", ["93 + 1 = 94", "95 - 7 = 88"], [True, False], None, None,
                              {"gold_steps": ["93 + 1 = 94", "94 - 7 = 87", "answer 87"]})
    assert aux_targets(corrupt, tok) == [-100] + ids("94")
    corrupt = LabelledExample("q", ["93 + 2 = 95"], [False], None, None, {"gold_steps": ["93 + 1 = 94"]})
    assert aux_targets(corrupt, tok) == ids("1")
    early = LabelledExample("q", ["93 + 1 = 94", "answer 94"], [True, False], None, None,
                            {"gold_steps": ["93 + 1 = 94", "94 - 7 = 87", "answer 87"]})
    assert aux_targets(early, tok) == [-100] + ids("94")  # the step it should have written starts with 94


def test_augmentation_without_a_task_is_a_config_error(tmp_path, arith):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(to_dict(e)) + "\n" for e in golds(arith, "train", 4)))
    config = tmp_path / "prm.yaml"
    config.write_text(json.dumps({"job": "train", "trainer": {
        "type": "prm", "kind": "lm-head", "model": BACKBONE, "data": [str(data)], "good_token": "good",
        "bad_token": "bad", "steps": 1, "batch_size": 4, "augment": 0.5, "threads": 1}}))
    result = CliRunner().invoke(cli, ["run", str(config), "-o", str(tmp_path / "out")])
    assert result.exit_code != 0 and "augment" in result.output


def lm_head(**fields):
    from openr_prm.heads import LMHead
    from openr_prm.models import LMHeadConfig

    return LMHead(LMHeadConfig(**{"model": BACKBONE, "dtype": "float32", "device": "cpu", "threads": 1, **fields}))


def test_base_lr_groups_freeze_or_slow_the_base():
    import types

    from openr_prm.train_loop import deepen, param_groups

    models, _ = lm_head().load(train=True)
    model = models["model"]
    deepen(model, 2)
    new = {id(p) for layer in list(model.base_model.layers)[-2:] for p in layer.parameters()}
    config = types.SimpleNamespace(base_lr=0.0, route_lr=None, extra_layers=2)
    groups = param_groups(model, config)
    assert len(groups) == 1 and {id(p) for p in groups[0]["params"]} == new
    assert not model.get_input_embeddings().weight.requires_grad
    model2 = lm_head().load(train=True)[0]["model"]
    deepen(model2, 2)
    groups = param_groups(model2, types.SimpleNamespace(base_lr=1e-4, route_lr=None, extra_layers=2))
    assert len(groups) == 2 and groups[1]["lr"] == 1e-4
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == len(list(model2.parameters()))
    assert param_groups(model2, types.SimpleNamespace(base_lr=None, route_lr=None, extra_layers=2))[0]["params"]


def test_route_lr_freezes_or_slows_the_routed_attention():
    import types

    from openr_prm.train_loop import deepen, param_groups

    def fresh():
        model = lm_head().load(train=True)[0]["model"]
        deepen(model, 2)
        attn = model.base_model.layers[-2].self_attn
        return model, {id(p) for proj in (attn.q_proj, attn.k_proj) for p in proj.parameters()}

    model, routed = fresh()
    groups = param_groups(model, types.SimpleNamespace(base_lr=None, route_lr=0.0, extra_layers=2))
    assert len(groups) == 1 and not routed & {id(p) for p in groups[0]["params"]}
    attn = model.base_model.layers[-2].self_attn
    assert not attn.q_proj.weight.requires_grad and not attn.k_proj.weight.requires_grad and attn.v_proj.weight.requires_grad
    model, routed = fresh()
    groups = param_groups(model, types.SimpleNamespace(base_lr=1e-4, route_lr=1e-5, extra_layers=2))
    by_lr = {g.get("lr"): {id(p) for p in g["params"]} for g in groups}
    assert set(by_lr) == {None, 1e-4, 1e-5} and by_lr[1e-5] == routed
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_tag_init_copies_the_join_token_embedding():
    import types

    import torch

    from openr_prm.train_loop import ensure_marker

    head = lm_head(good_token="good", bad_token="bad")
    for tag_init, want in (("join", "\n"), ("=", "=")):
        models, tok = head.load(train=True)
        model = models["model"]
        config = types.SimpleNamespace(step_tag=" ки", good_token="good", bad_token="bad", tag_init=tag_init, join="\n")
        ensure_marker(head, config, model, tok)
        weight = model.get_input_embeddings().weight
        assert torch.equal(weight[tok.convert_tokens_to_ids("ки")], weight[tok.convert_tokens_to_ids(want)])
    with pytest.raises(ConfigError):
        models, tok = head.load(train=True)
        ensure_marker(head, types.SimpleNamespace(step_tag=" ки", good_token="good", bad_token="bad",
                                                       tag_init="1 + 1", join="\n"), models["model"], tok)


def routed_attention(arith, extra_layers: int, layer: int, **route):
    """Route a fresh LM-head PRM on 120 arith solutions; run 20 of them and return the tokenizer,
    their layouts and ids, and added layer ``layer``'s attention weights and output."""
    import types

    import torch

    from openr_prm.heads import pad
    from openr_prm.train_loop import as_request, deepen, ensure_marker, route_heads

    head = lm_head(good_token="good", bad_token="bad")
    models, tok = head.load(train=True)
    model = models["model"]
    config = types.SimpleNamespace(step_tag=" ки", good_token="good", bad_token="bad", tag_init="join", join="\n",
                                   extra_layers=extra_layers, route_token="=", route_offset=2, route_scale=12.0,
                                   route_gain=1.0, prompt_template="{question}\n", max_length=4096, **route)
    deepen(model, extra_layers)
    ensure_marker(head, config, model, tok)
    examples = golds(arith, "train", 120)
    layouts = head.layouts(tok, [as_request(e, i) for i, e in enumerate(examples)])
    route_heads(model, tok, layouts, config)
    model.config._attn_implementation = "eager"
    captured = {}
    hook = model.base_model.layers[layer].self_attn.register_forward_hook(
        lambda m, i, o: captured.update(a=o[1], out=o[0]))
    ids, mask = pad(layouts[:20], tok.pad_token_id, "cpu")
    try:
        with torch.no_grad():
            model(input_ids=ids, attention_mask=mask)
    finally:
        hook.remove()
    return tok, layouts[:20], ids, captured["a"], captured["out"]


def test_route_heads_attend_from_the_tag_to_the_route_token(arith):
    _, layouts, _, attention, _ = routed_attention(arith, extra_layers=2, layer=2)
    weights = [attention[b, :, t, t - 2].mean().item() for b, l in enumerate(layouts)
               for t in l.read_positions[:-1]]  # operation steps: '=' two tokens before the tag
    assert sum(weights) / len(weights) > 0.4


def test_route_back_heads_read_fixed_offsets_before_the_tag_and_start_as_the_identity(arith):
    """Each head of the second added layer reads one position OFFSET tokens before the tag (on
    arith 6 = the newline before the step's start, 4 = its operator), and the layer adds nothing
    until trained."""
    tok, layouts, ids, attention, out = routed_attention(arith, extra_layers=3, layer=3, route_back=(4, 6))
    tags = [(b, t) for b, l in enumerate(layouts) for t in l.read_positions[:-1]]
    for h, offset in enumerate((4, 6, 4, 6)):
        on = sum(attention[b, h, t, t - offset].item() for b, t in tags) / len(tags)
        assert on > 0.4, (h, offset, on)
        text = {tok.convert_ids_to_tokens(int(ids[b, t - offset])) for b, t in tags}
        assert text <= ({"+", "-", "*"} if offset == 4 else {"\n", "ки"}), text
    assert out.abs().max().item() == 0  # output starts at zero: the layer is the identity


def test_route_heads_is_reproducible():
    """The routed layer's init is a least-squares fit on hidden states that are rank-deficient;
    LAPACK's default driver answered differently on repeated calls, so no two runs matched."""
    import copy
    import types

    import torch

    from openr_arith.task import ArithTask
    from openr_core.types import ScoreRequest
    from openr_prm.train_loop import deepen, route_heads
    from openr_transformers.loading import load_causal_lm

    torch.manual_seed(0)
    model, tokenizer = load_causal_lm("pkg:openr_arith/models/backbone")
    deepen(model, 2)
    problems = ArithTask().load("train", 40)
    config = types.SimpleNamespace(step_tag="", join="\n", prompt_template="{question}\n", max_length=4096,
                                   extra_layers=2, route_token="=", route_offset=2, route_scale=12.0, route_gain=1.0)
    layouts = lm_head(step_tag="").layouts(tokenizer, [ScoreRequest(p, p.meta["solution"].split("\n")) for p in problems])
    routed = []
    for _ in range(3):
        m = copy.deepcopy(model)
        route_heads(m, tokenizer, layouts, config)
        attn = m.base_model.layers[-2].self_attn
        routed.append(torch.cat([attn.q_proj.weight, attn.k_proj.weight]))
    assert routed[0].abs().sum() > 0
    assert all(torch.equal(routed[0], r) for r in routed[1:])
