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
from transformers import (AutoModel, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM)

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: the helper module next to this file
import prm_replicas as replicas  # noqa: E402
from openr_core import Problem, ScoreRequest
from openr_core.errors import DataError
from openr_prm.models import ClassifierPRM, ImplicitPRM, LMHeadPRM, OutcomeRM

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


def ids_of(encoded):
    """apply_chat_template(tokenize=True) gives ids or a BatchEncoding depending on the version."""
    return encoded["input_ids"] if hasattr(encoded, "keys") else encoded


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


def load(path, cls=AutoModelForCausalLM, **kw):
    from transformers import AutoTokenizer

    return cls.from_pretrained(path, dtype=torch.float32, **kw).eval(), AutoTokenizer.from_pretrained(path)


# -- Math-Shepherd (item 1) --------------------------------------------------------------------


@torch.no_grad()
def math_shepherd_card(path, question, steps):
    model, tokenizer = load(path)
    good_token, bad_token, step_tag = "+", "-", "ки"
    candidate_tokens = tokenizer.encode(f"{good_token} {bad_token}")[1:]
    step_tag_id = tokenizer.encode(f"{step_tag}")[-1]
    output = "\n".join(f"{s} {step_tag}" for s in steps)
    input_id = torch.tensor([tokenizer.encode(f"{question} {output}")])
    logits = model(input_id).logits[:, :, candidate_tokens]
    scores = logits.softmax(dim=-1)[:, :, 0]
    return scores[input_id == step_tag_id].tolist(), candidate_tokens


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


@torch.no_grad()
def qwen_prm_card(path, question, steps):
    model, tokenizer = load(path, AutoModel, trust_remote_code=True)
    messages = [{"role": "system", "content": "Please reason step by step, and put your final answer within \\boxed{}."},
                {"role": "user", "content": question},
                {"role": "assistant", "content": "<extra_0>".join(steps) + "<extra_0>"}]
    conversation_str = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    input_ids = tokenizer.encode(conversation_str, return_tensors="pt")
    outputs = model(input_ids=input_ids)
    step_sep_id = tokenizer.encode("<extra_0>")[0]
    token_masks = input_ids == step_sep_id
    probabilities = torch.softmax(outputs[0], dim=-1) * token_masks.unsqueeze(-1)
    sample = probabilities[0]
    return sample[sample != 0].view(-1, 2)[:, 1].tolist()


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


@torch.no_grad()
def qwen_rm_card(path, question, steps):
    model, tokenizer = load(path, AutoModel, trust_remote_code=True)
    chat = [{"role": "system", "content": "Please reason step by step, and put your final answer within \\boxed{}."},
            {"role": "user", "content": question}, {"role": "assistant", "content": "\n\n".join(steps)}]
    conversation_str = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=False)
    input_ids = tokenizer.encode(conversation_str, return_tensors="pt", add_special_tokens=False)
    return model(input_ids=input_ids)[0].item()


def test_qwen_math_rm_outcome_score(ckpt):
    rm = preset("qwen2.5-math-rm-72b", model=ckpt["qwen-rm"])
    scores = rm.score([request()])[0].scores
    assert len(scores) == len(STEPS)
    assert scores[-1] == pytest.approx(qwen_rm_card(ckpt["qwen-rm"], QUESTION, STEPS), abs=1e-5)


# -- Skywork PRM (value head, per-step tokenisation) ---------------------------------------------


@torch.no_grad()
def skywork_card(path, problem, steps):
    """skywork-o1-prm-inference: prepare_input + PRM_MODEL(return_probs=True) + derive_step_rewards."""
    from safetensors.torch import load_file

    causal, tokenizer = load(path)
    state = load_file(Path(path) / "model.safetensors")
    summary = torch.nn.Linear(causal.config.hidden_size, 1)
    summary.load_state_dict({"weight": state["v_head.summary.weight"], "bias": state["v_head.summary.bias"]})
    response, step_token = "\n".join(steps), "\n"
    prompt_ids = tokenizer.encode(tokenizer.bos_token + problem + "\n")
    response_ids, reward_flags = [], [0] * len(prompt_ids)
    step_token_id = tokenizer.encode(step_token)[-1]
    for step in response.split(step_token):
        step_ids = tokenizer.encode(step) if step != "" else []
        step_ids += [step_token_id]
        flag = [0] * len(step_ids)
        flag[-1] = 1
        response_ids.extend(step_ids)
        reward_flags.extend(flag)
    input_ids = torch.tensor([prompt_ids + response_ids])
    hidden = causal(input_ids=input_ids, output_hidden_states=True).hidden_states[-1]
    value = torch.sigmoid(summary(hidden).squeeze(-1))[0]
    return [value[i].item() for i, f in enumerate(reward_flags) if f == 1]


def test_skywork_prm_value_head(ckpt):
    rm = preset("skywork-o1-open-prm-qwen-2.5-7b", model=ckpt["skywork"])
    assert rm.score([request()])[0].scores == pytest.approx(skywork_card(ckpt["skywork"], QUESTION, STEPS), abs=1e-5)


# -- RLHFlow Llama3.1-8B-PRM (Llama-3 chat turns) ------------------------------------------------


@torch.no_grad()
def rlhflow_card(path, question, steps):
    model, tokenizer = load(path)
    plus_tag_id = tokenizer.encode("+")[-1]
    minus_tag_id = tokenizer.encode("-")[-1]
    candidate_tokens = [plus_tag_id, minus_tag_id]
    conversation, scores = [], []
    for k in range(len(steps)):
        text = question + " " + steps[0] if k == 0 else steps[k]
        conversation.append({"content": text, "role": "user"})
        conversation.append({"content": "+", "role": "assistant"})
        input_ids = torch.tensor([ids_of(tokenizer.apply_chat_template(conversation))]).view(1, -1)
        assert (input_ids == tokenizer.bos_token_id).sum() == 1
        logits = model(input_ids).logits[:, -3, candidate_tokens]
        scores.append(logits.softmax(dim=-1)[:, 0].item())
    return scores


def test_rlhflow_llama_prm_reads_each_assistant_turn(ckpt):
    rm = preset("rlhflow-llama3.1-8b-prm-deepseek-data", model=ckpt["rlhflow"])
    scored = rm.score([request()])[0]
    assert scored.scores == pytest.approx(rlhflow_card(ckpt["rlhflow"], QUESTION, STEPS), abs=1e-5)
    layout = rm._scorer.head.layout(rm._scorer.tokenizer, request())
    assert layout.input_ids.count(rm._scorer.tokenizer.bos_token_id) == 1  # no second BOS


# -- EurusPRM (implicit: model, reference, beta) -------------------------------------------------


@torch.no_grad()
def eurus_card(path, ref_path, question, steps, coef=0.001):
    model, tokenizer = load(path)
    ref_model, _ = load(ref_path)
    input_ids = torch.tensor([ids_of(tokenizer.apply_chat_template(
        [{"role": "user", "content": question}, {"role": "assistant", "content": "\n\n".join(steps)}],
        tokenize=True, add_generation_prompt=False))]).view(1, -1)
    attention_mask = input_ids != tokenizer.pad_token_id
    step_last_tokens = []
    for step_num in range(0, len(steps) + 1):
        conv = tokenizer.apply_chat_template([{"role": "user", "content": question},
                                              {"role": "assistant", "content": "\n\n".join(steps[:step_num])}],
                                             tokenize=False, add_generation_prompt=False)
        conv = conv.strip()
        if step_num != 0 and step_num != len(steps):
            conv += "\n\n"
        currect_ids = tokenizer.encode(conv, add_special_tokens=False)
        step_last_tokens.append(len(currect_ids) - 2)
    label_mask = torch.tensor([[0] * step_last_tokens[0] + [1] * (input_ids.shape[-1] - step_last_tokens[0])])
    step_last_tokens = torch.tensor([step_last_tokens])

    def get_logps(model):
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        labels = input_ids[:, 1:].clone().long()
        per_token_logps = torch.gather(logits[:, :-1, :].log_softmax(-1), dim=2, index=labels.unsqueeze(2)).squeeze(2)
        return per_token_logps

    raw_reward = get_logps(model) - get_logps(ref_model)
    beta_reward = (coef * raw_reward * label_mask[:, 1:]).cumsum(-1)
    return beta_reward.gather(dim=-1, index=step_last_tokens[:, 1:])[0].tolist()


def test_eurus_prm_implicit_rewards(ckpt):
    rm = preset("eurus-prm-stage2", model=ckpt["eurus"], reference=ckpt["eurus-ref"])
    expected = eurus_card(ckpt["eurus"], ckpt["eurus-ref"], QUESTION, STEPS)
    assert rm.score([request()])[0].scores == pytest.approx(expected, abs=1e-5)
