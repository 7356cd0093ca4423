"""Short re-implementations of each model card's reference code (scores for one solution), used by
the replica tests and by scripts/gpu-check.sh on the real checkpoints. Each follows its card's
code line by line; only the device handling (inputs on the model's device, float results) is added."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

DTYPE = torch.float32


_LOADED: dict = {}


def load(path, cls=AutoModelForCausalLM, **kw):
    """The model (on the GPU when there is one) and tokenizer, loaded once per process."""
    key = (str(path), cls.__name__, tuple(sorted(kw.items())))
    if key not in _LOADED:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        model = cls.from_pretrained(path, dtype=DTYPE, **kw).to(device).eval()
        _LOADED[key] = model, AutoTokenizer.from_pretrained(path, **kw)
    return _LOADED[key]


def ids_of(encoded):
    """apply_chat_template(tokenize=True) gives ids or a BatchEncoding depending on the version."""
    return encoded["input_ids"] if hasattr(encoded, "keys") else encoded


def v_head_weights(path) -> dict:
    """``v_head.*`` tensors of a local or hub checkpoint (one file or an index of shards)."""
    from huggingface_hub import hf_hub_download
    from safetensors.torch import load_file

    def file(name):
        local = Path(path) / name
        return local if local.exists() else Path(hf_hub_download(str(path), name))

    try:
        shards = sorted(set(json.loads(file("model.safetensors.index.json").read_text())["weight_map"].values()))
    except Exception:
        shards = ["model.safetensors"]
    out = {}
    for shard in shards:
        out.update({k: v for k, v in load_file(file(shard)).items() if k.startswith("v_head.")})
    return out


@torch.no_grad()
def math_shepherd_card(path, question, steps):
    model, tokenizer = load(path)
    good_token, bad_token, step_tag = "+", "-", "ки"
    candidate_tokens = tokenizer.encode(f"{good_token} {bad_token}")[1:]
    step_tag_id = tokenizer.encode(f"{step_tag}")[-1]
    output = "\n".join(f"{s} {step_tag}" for s in steps)
    input_id = torch.tensor([tokenizer.encode(f"{question} {output}")]).to(model.device)
    logits = model(input_id).logits[:, :, candidate_tokens]
    scores = logits.softmax(dim=-1)[:, :, 0]
    return scores[input_id == step_tag_id].float().tolist(), candidate_tokens


@torch.no_grad()
def qwen_prm_card(path, question, steps):
    model, tokenizer = load(path, AutoModel, trust_remote_code=True)
    messages = [{"role": "system", "content": "Please reason step by step, and put your final answer within \\boxed{}."},
                {"role": "user", "content": question},
                {"role": "assistant", "content": "<extra_0>".join(steps) + "<extra_0>"}]
    conversation_str = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    input_ids = tokenizer.encode(conversation_str, return_tensors="pt").to(model.device)
    outputs = model(input_ids=input_ids)
    step_sep_id = tokenizer.encode("<extra_0>")[0]
    token_masks = input_ids == step_sep_id
    probabilities = torch.softmax(outputs[0].float(), dim=-1) * token_masks.unsqueeze(-1)
    sample = probabilities[0]
    return sample[sample != 0].view(-1, 2)[:, 1].tolist()


@torch.no_grad()
def qwen_rm_card(path, question, steps):
    model, tokenizer = load(path, AutoModel, trust_remote_code=True)
    chat = [{"role": "system", "content": "Please reason step by step, and put your final answer within \\boxed{}."},
            {"role": "user", "content": question}, {"role": "assistant", "content": "\n\n".join(steps)}]
    conversation_str = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=False)
    input_ids = tokenizer.encode(conversation_str, return_tensors="pt", add_special_tokens=False).to(model.device)
    return model(input_ids=input_ids)[0].float().item()


@torch.no_grad()
def skywork_card(path, problem, steps):
    """skywork-o1-prm-inference: prepare_input + PRM_MODEL(return_probs=True) + derive_step_rewards."""
    causal, tokenizer = load(path)
    state = v_head_weights(path)
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
    input_ids = torch.tensor([prompt_ids + response_ids]).to(causal.device)
    hidden = causal(input_ids=input_ids, output_hidden_states=True).hidden_states[-1]
    value = torch.sigmoid(summary.to(hidden)(hidden).squeeze(-1))[0].float()
    return [value[i].item() for i, f in enumerate(reward_flags) if f == 1]


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
        input_ids = torch.tensor([ids_of(tokenizer.apply_chat_template(conversation))]).view(1, -1).to(model.device)
        assert (input_ids == tokenizer.bos_token_id).sum() == 1
        logits = model(input_ids).logits[:, -3, candidate_tokens]
        scores.append(logits.float().softmax(dim=-1)[:, 0].item())
    return scores


@torch.no_grad()
def eurus_card(path, ref_path, question, steps, coef=0.001):
    model, tokenizer = load(path)
    ref_model, _ = load(ref_path)
    input_ids = torch.tensor([ids_of(tokenizer.apply_chat_template(
        [{"role": "user", "content": question}, {"role": "assistant", "content": "\n\n".join(steps)}],
        tokenize=True, add_generation_prompt=False))]).view(1, -1).to(model.device)
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
    label_mask = torch.tensor([[0] * step_last_tokens[0] + [1] * (input_ids.shape[-1] - step_last_tokens[0])]).to(model.device)
    step_last_tokens = torch.tensor([step_last_tokens]).to(model.device)

    def get_logps(model):
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        labels = input_ids[:, 1:].clone().long()
        per_token_logps = torch.gather(logits[:, :-1, :].float().log_softmax(-1), dim=2, index=labels.unsqueeze(2)).squeeze(2)
        return per_token_logps

    raw_reward = get_logps(model) - get_logps(ref_model)
    beta_reward = (coef * raw_reward * label_mask[:, 1:]).cumsum(-1)
    return beta_reward.gather(dim=-1, index=step_last_tokens[:, 1:])[0].tolist()
