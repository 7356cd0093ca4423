"""Each published reward-model family, scored by its preset (configs/models/*.yaml) on a tiny
replica (prm_replicas.py), equals a short re-implementation of its model card's reference
code to 1e-5. Plus the issue-16 cases: label tokens per card, templates with braces, heads that
do not match the checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM

from openr_core import Problem, ScoreRequest
from openr_core.errors import DataError
from openr_prm.models import ClassifierPRM, ImplicitPRM, LMHeadPRM, OutcomeRM

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: the helper modules next to this file
import prm_replicas as replicas  # noqa: E402
from prm_cards import (eurus_card, math_shepherd_card, qwen_prm_card, qwen_rm_card, rlhflow_card,  # noqa: E402
                       skywork_card)

ROOT = Path(__file__).resolve().parents[3]
MODELS = ROOT / "configs" / "models"
TYPES = {"lm-head-prm": LMHeadPRM, "classifier-prm": ClassifierPRM, "outcome-rm": OutcomeRM, "implicit-prm": ImplicitPRM}

QUESTION = "Tom has 12 apples. He gives 5 away. How many are left? Use {braces}."
STEPS = ["Step 1: 12 - 5 = 7.", "Step 2: so + and - signs matter: 3 + 4 = 7:", "The answer is \\boxed{7}."]


def preset(name: str, **override):
    """The reward model of ``configs/models/<name>.yaml``, pointed at a replica."""
    section = dict(yaml.safe_load((MODELS / f"{name}.yaml").read_text())["reward_model"])
    cls = TYPES[section.pop("type")]
    section.pop("batch_size", None)
    return cls(**{**section, "device": "cpu", "dtype": "float32", **override})


def request(steps=STEPS):
    return ScoreRequest(Problem("p1", QUESTION), steps)


@pytest.fixture(scope="session")
def ckpt(tmp_path_factory):
    """Replica checkpoints, built once per session: name -> folder."""
    root = tmp_path_factory.mktemp("replicas")
    out = {}

    sp = replicas.sentencepiece_tokenizer()
    torch.manual_seed(0)
    MistralForCausalLM(replicas.tiny(MistralConfig, sp, head_dim=16)).save_pretrained(root / "shepherd")
    sp.save_pretrained(root / "shepherd")
    out["shepherd"] = root / "shepherd"

    chatml = replicas.chatml_tokenizer()
    qwen = replicas.tiny(Qwen2Config, chatml)
    for name, cls in (("qwen-prm", "Qwen2ForProcessRewardModel"), ("qwen-rm", "Qwen2ForRewardModel")):
        replicas.save_remote_code(root / name, qwen, cls, seed=len(out))
        chatml.save_pretrained(root / name)
        out[name] = root / name

    for name, seed in (("eurus", 3), ("eurus-ref", 4)):
        torch.manual_seed(seed)
        Qwen2ForCausalLM(qwen).save_pretrained(root / name)
        chatml.save_pretrained(root / name)
        out[name] = root / name

    torch.manual_seed(5)  # Skywork: a causal LM checkpoint plus v_head.summary
    Qwen2ForCausalLM(qwen).save_pretrained(root / "skywork")
    replicas.add_tensors(root / "skywork", {"v_head.summary.weight": torch.randn(1, qwen.hidden_size) * 0.5,
                                            "v_head.summary.bias": torch.tensor([0.3])})
    replicas.chatml_tokenizer(bos_token="<|endoftext|>").save_pretrained(root / "skywork")
    out["skywork"] = root / "skywork"

    llama = replicas.llama3_tokenizer()
    torch.manual_seed(6)
    LlamaForCausalLM(replicas.tiny(LlamaConfig, llama, head_dim=16)).save_pretrained(root / "rlhflow")
    llama.save_pretrained(root / "rlhflow")
    out["rlhflow"] = root / "rlhflow"
    return {k: str(v) for k, v in out.items()}


# -- Math-Shepherd (item 1) --------------------------------------------------------------------


def test_math_shepherd_reads_the_cards_label_pieces(ckpt):
    rm = preset("math-shepherd-mistral-7b-prm", model=ckpt["shepherd"])
    expected, candidates = math_shepherd_card(ckpt["shepherd"], QUESTION, STEPS)
    tokenizer = rm._scorer.tokenizer
    assert [rm._scorer.head.good, rm._scorer.head.bad] == candidates
    assert tokenizer.convert_ids_to_tokens(candidates) == ["▁+", "▁-"]  # not the bare "+" / "-"
    assert rm.score([request()])[0].scores == pytest.approx(expected, abs=1e-5)


def test_a_label_that_is_not_one_piece_is_an_error(ckpt):
    with pytest.raises(DataError, match=r"label token 'Step 1' is \d+ pieces"):
        LMHeadPRM(model=ckpt["shepherd"], good_token="Step 1", device="cpu")


# -- Qwen2.5-Math-PRM (remote code, <extra_0>, item 4) -----------------------------------------


@pytest.mark.parametrize("name", ["qwen2.5-math-prm-7b", "qwen2.5-math-prm-72b"])
def test_qwen_math_prm(ckpt, name):
    rm = preset(name, model=ckpt["qwen-prm"])
    assert rm.score([request()])[0].scores == pytest.approx(qwen_prm_card(ckpt["qwen-prm"], QUESTION, STEPS), abs=1e-5)


def test_prompt_template_with_braces_scores_and_validates(ckpt, tmp_path):
    """Qwen2.5-Math-PRM's prompt written out by hand: its system prompt has \\boxed{}."""
    template = ("<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
                "<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n")
    rm = ClassifierPRM(model=ckpt["qwen-prm"], head="remote-code", prompt_template=template, join="",
                       suffix="<|im_end|>\n", device="cpu", dtype="float32")
    assert rm.score([request()])[0].scores == pytest.approx(qwen_prm_card(ckpt["qwen-prm"], QUESTION, STEPS), abs=1e-5)

    from openr_core.cli import cli

    def validate(template):
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump({"job": "eval-prm", "data": ["x.json"], "reward_model": {
            "type": "classifier-prm", "model": "m", "prompt_template": template}}))
        return CliRunner().invoke(cli, ["validate", str(path)])

    assert validate(template).exit_code == 0
    bad = validate("\\boxed{} {qeustion}")
    assert bad.exit_code != 0 and "prompt_template" in bad.output and "{question}" in bad.output


# -- heads that do not match the checkpoint (item 5) ---------------------------------------------


@pytest.mark.parametrize("cls, name, fields, named", [
    (ClassifierPRM, "qwen-prm", {}, "score.0.weight"),  # Qwen2.5-Math-PRM without head: remote-code
    (OutcomeRM, "qwen-rm", {}, "score.2.weight"),  # Qwen2.5-Math-RM's MLP
    (OutcomeRM, "skywork", {}, "v_head.summary.weight"),  # Skywork's value head
    (ClassifierPRM, "eurus", {}, "score.weight"),  # a causal LM has no token-classification head
])
def test_a_head_that_does_not_match_is_an_error_naming_the_weights(ckpt, cls, name, fields, named):
    with pytest.raises(DataError, match=named.replace(".", r"\.")):
        cls(model=ckpt[name], device="cpu", **fields)


# -- Qwen2.5-Math-RM (outcome, remote code) ------------------------------------------------------


def test_qwen_math_rm_outcome_score(ckpt):
    rm = preset("qwen2.5-math-rm-72b", model=ckpt["qwen-rm"])
    scores = rm.score([request()])[0].scores
    assert len(scores) == len(STEPS)
    assert scores[-1] == pytest.approx(qwen_rm_card(ckpt["qwen-rm"], QUESTION, STEPS), abs=1e-5)


# -- Skywork PRM (value head, per-step tokenisation) ---------------------------------------------


def test_skywork_prm_value_head(ckpt):
    rm = preset("skywork-o1-open-prm-qwen-2.5-7b", model=ckpt["skywork"])
    assert rm.score([request()])[0].scores == pytest.approx(skywork_card(ckpt["skywork"], QUESTION, STEPS), abs=1e-5)


# -- RLHFlow Llama3.1-8B-PRM (Llama-3 chat turns) ------------------------------------------------


def test_rlhflow_llama_prm_reads_each_assistant_turn(ckpt):
    rm = preset("rlhflow-llama3.1-8b-prm-deepseek-data", model=ckpt["rlhflow"])
    scored = rm.score([request()])[0]
    assert scored.scores == pytest.approx(rlhflow_card(ckpt["rlhflow"], QUESTION, STEPS), abs=1e-5)
    layout = rm._scorer.head.layout(rm._scorer.tokenizer, request())
    assert layout.input_ids.count(rm._scorer.tokenizer.bos_token_id) == 1  # no second BOS


# -- EurusPRM (implicit: model, reference, beta) -------------------------------------------------


def test_eurus_prm_implicit_rewards(ckpt):
    rm = preset("eurus-prm-stage2", model=ckpt["eurus"], reference=ckpt["eurus-ref"])
    expected = eurus_card(ckpt["eurus"], ckpt["eurus-ref"], QUESTION, STEPS)
    assert rm.score([request()])[0].scores == pytest.approx(expected, abs=1e-5)


def test_docs_list_every_preset_and_head_kind():
    from openr_prm.heads import HEADS

    text = (ROOT / "docs" / "models.md").read_text()
    assert [p.name for p in sorted(MODELS.glob("*.yaml")) if p.name not in text] == []
    assert [k for k, head in HEADS.items() if f"`{k}`" not in text or f"`{head.__name__}`" not in text] == []


@pytest.mark.parametrize("name, replica", [
    ("math-shepherd-mistral-7b-prm", {"model": "shepherd"}), ("qwen2.5-math-prm-7b", {"model": "qwen-prm"}),
    ("qwen2.5-math-rm-72b", {"model": "qwen-rm"}), ("skywork-o1-open-prm-qwen-2.5-7b", {"model": "skywork"}),
    ("rlhflow-llama3.1-8b-prm-deepseek-data", {"model": "rlhflow"}),
    ("eurus-prm-stage2", {"model": "eurus", "reference": "eurus-ref"})])
def test_presets_score_the_same_in_a_padded_batch_as_alone(ckpt, name, replica):
    rm = preset(name, **{k: ckpt[v] for k, v in replica.items()})
    batch = [request(STEPS), request(STEPS[:1]), request([]), request(STEPS[1:] + STEPS)]
    together = rm.score(batch)
    assert [len(s.scores) for s in together] == [3, 1, 0, 5]
    for a, r in zip(together, batch):
        assert a.scores == pytest.approx(rm.score([r])[0].scores, abs=1e-5)
