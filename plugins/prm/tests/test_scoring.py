import pytest

from openr_core import ScoreRequest
from openr_prm.layout import build_layout
from openr_prm.models import ClassifierPRM, ImplicitPRM, LMHeadPRM, OutcomeRM


def requests(arith, n=6):
    out = []
    for p in arith.load("test", n):
        steps = p.meta["solution"].split("\n")
        steps[1] = steps[1].rsplit(" ", 1)[0] + " 7"  # a wrong result in step 2
        out.append(ScoreRequest(p, steps))
    return out


@pytest.fixture(scope="module")
def reward_models(random_models):
    return {
        "lm-head": LMHeadPRM(model=random_models["causal"], step_tag=" ?", good_token="+", bad_token="-"),
        "classifier": ClassifierPRM(model=random_models["token"], separator=" ."),
        "outcome": OutcomeRM(model=random_models["sequence"]),
        "implicit": ImplicitPRM(model=random_models["causal"], reference=random_models["causal2"], beta=0.5),
    }


@pytest.mark.parametrize("kind", ["lm-head", "classifier", "outcome", "implicit"])
def test_one_pass_equals_per_prefix(reward_models, arith, kind):
    rm = reward_models[kind]
    batch = requests(arith)
    one_pass = rm.score(batch)
    per_prefix = rm._scorer.score_per_prefix(batch)
    for a, b, r in zip(one_pass, per_prefix, batch):
        assert len(a.scores) == len(r.steps)
        assert a.scores == pytest.approx(b.scores, abs=1e-4)
        assert a.n_tokens < b.n_tokens  # the per-prefix baseline reads every prefix again


def test_scores_do_not_depend_on_batch_company(reward_models, arith):
    rm = reward_models["lm-head"]
    batch = requests(arith, 8)
    together = rm.score(batch)
    alone = [rm.score([r])[0] for r in batch[:3]]
    for a, b in zip(together, alone):
        assert a.scores == pytest.approx(b.scores, abs=1e-5)
    assert all(0 <= s <= 1 for r in together for s in r.scores)


def test_layout_reads_the_last_tag_token(random_models):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(random_models["causal"])
    layout = build_layout(tok, "ann has 5 coins .\n", ["5 + 1 = 6", "answer 6"], tag=" ?", join="\n")
    tokens = tok.convert_ids_to_tokens(layout.input_ids)
    assert [tokens[i] for i in layout.read_positions] == ["?", "?"]
    assert tokens[layout.read_positions[0] - 1] == "6" and tokens[layout.read_positions[1] + 1 :] == []
    a, b = layout.step_token_spans[0]
    assert tokens[a:b] == ["5", "+", "1", "=", "6", "?"]
    assert tokens[layout.response_start] == "5"


def test_missing_tag_is_a_clear_error(random_models):
    from openr_core import DataError

    with pytest.raises(DataError, match="step tag ' ки' is not in the tokenizer's vocabulary"):
        LMHeadPRM(model=random_models["causal"])


@pytest.mark.parametrize("damage", ["missing", "empty", "cut short"])
@pytest.mark.parametrize("kind", ["lm-head", "classifier", "outcome", "outcome-value-head", "implicit"])
def test_every_head_refuses_a_missing_or_corrupt_model_folder_in_one_line(random_models, tmp_path, kind, damage):
    import shutil

    from openr_core import DataError

    source = random_models["causal" if kind in ("lm-head", "implicit", "outcome-value-head") else
                           "token" if kind == "classifier" else "sequence"]
    folder = tmp_path / "model"
    if damage != "missing":
        shutil.copytree(source, folder)
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(b"" if damage == "empty" else data[: len(data) // 2])
    make = {"lm-head": lambda m: LMHeadPRM(model=m, step_tag=" ?", good_token="+", bad_token="-"),
            "classifier": lambda m: ClassifierPRM(model=m, separator=" ."),
            "outcome": lambda m: OutcomeRM(model=m),
            "outcome-value-head": lambda m: OutcomeRM(model=m, head="value-head"),
            "implicit": lambda m: ImplicitPRM(model=source, reference=m)}[kind]
    with pytest.raises(DataError) as info:
        make(str(folder)).score([])
    message = str(info.value)
    expected = "no such folder" if damage == "missing" else "a .safetensors file is corrupt or cut short: model.safetensors: "
    assert message.startswith(f"model '{folder}': ") and expected in message and "\n" not in message
