import math

import pytest
import torch

import attrs

from openr_rl import advantages as A
from openr_rl.algorithms import GRPO
from openr_rl.config import GRPOConfig
from openr_rl.rollouts import step_spans, token_steps


def test_group_normalisation_by_hand():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    adv = A.group_normalised(rewards, eps=0.0)
    std = math.sqrt(1 / 3)  # unbiased std of (1, 0, 0, 1)
    assert adv[0].tolist() == pytest.approx([0.5 / std, -0.5 / std, -0.5 / std, 0.5 / std])
    assert adv[1].tolist() == [0.0] * 4  # a solved group gives no signal
    assert A.group_normalised(rewards, scale=False)[0].tolist() == [0.5, -0.5, -0.5, 0.5]


def test_leave_one_out_by_hand():
    adv = A.leave_one_out(torch.tensor([[1.0, 0.0, 0.0]]))
    assert adv[0].tolist() == pytest.approx([1.0, -0.5, -0.5])
    with pytest.raises(ValueError, match="at least 2"):
        A.leave_one_out(torch.tensor([[1.0]]))


def test_process_supervision_normalises_over_the_group_then_sums_to_the_end():
    # one group, two rollouts: steps (1, 0) and (1, 1, 1); mean 0.8, unbiased std sqrt(0.2)
    out = A.process_supervision([[[1.0, 0.0], [1.0, 1.0, 1.0]]], eps=0.0)
    s = math.sqrt(0.2)
    hi, lo = 0.2 / s, -0.8 / s
    assert out[0][0] == pytest.approx([hi + lo, lo])
    assert out[0][1] == pytest.approx([3 * hi, 2 * hi, hi])
    own = A.process_supervision([[[1.0, 0.0], [1.0, 1.0, 1.0]]], returns=False, eps=0.0)
    assert own[0][0] == pytest.approx([hi, lo])
    centred = A.process_supervision([[[1.0, 0.0], [1.0, 1.0, 1.0]]], returns=False, scale=False)
    assert centred[0][0] == pytest.approx([0.2, -0.8]) and centred[0][1] == pytest.approx([0.2] * 3)


def test_broadcast_steps_to_tokens():
    assert A.broadcast([0.5, -1.0, 2.0], [0, 0, 1, 1, 1, 2]) == [0.5, 0.5, -1.0, -1.0, -1.0, 2.0]


def test_gae_by_hand():
    # gamma 1, lambda 0.5; rewards only at the end; values 0.2, 0.4, 0.6
    adv, ret = A.gae([0.0, 0.0, 1.0], [0.2, 0.4, 0.6], gamma=1.0, lam=0.5)
    d2 = 1.0 - 0.6            # last: r + 0 - V
    d1 = 0.0 + 0.6 - 0.4
    d0 = 0.0 + 0.4 - 0.2
    a2 = d2
    a1 = d1 + 0.5 * a2
    a0 = d0 + 0.5 * a1
    assert adv == pytest.approx([a0, a1, a2])
    assert ret == pytest.approx([a0 + 0.2, a1 + 0.4, a2 + 0.6])
    # lambda = 1, gamma = 1: advantage = return - value
    adv, _ = A.gae([0.5, 0.0, 1.0], [0.1, 0.2, 0.3], gamma=1.0, lam=1.0)
    assert adv == pytest.approx([1.5 - 0.1, 1.0 - 0.2, 1.0 - 0.3])


def test_prl_step_rewards_by_hand():
    # outcome 1, eta 2, per-step log-ratios (0.4, -0.2, 0.6): r - (1/eta) * tail sums
    out = A.prl_step_returns(1.0, [0.4, -0.2, 0.6], eta=2.0)
    assert out == pytest.approx([1 - 0.8 / 2, 1 - 0.4 / 2, 1 - 0.6 / 2])
    # the policy equals the reference: every step carries the outcome reward
    assert A.prl_step_returns(0.0, [0.0, 0.0], eta=5.0) == [0.0, 0.0]


def test_prime_process_returns_by_hand():
    # step rewards of two rollouts: means 0.5 and -1; each gets the other's mean as baseline
    out = A.prime_process_returns([[[1.0, 0.0], [-1.0]]])
    assert out[0][0] == pytest.approx([(1 + 1) + (0 + 1), 0 + 1])
    assert out[0][1] == pytest.approx([-1 - 0.5])


def test_kl_k3_is_zero_at_equality_and_matches_its_formula():
    logp = torch.tensor([-1.0, -0.5, -2.0])
    assert A.kl_k3(logp, logp).tolist() == [0.0, 0.0, 0.0]
    ref = torch.tensor([-1.5, -0.5, -1.0])
    d = ref - logp
    assert A.kl_k3(logp, ref).tolist() == pytest.approx((torch.exp(d) - d - 1).tolist())
    assert (A.kl_k3(logp, ref) >= 0).all()
    # its expectation under pi is KL(pi || ref): check on a two-outcome distribution
    p, q = torch.tensor([0.7, 0.3]), torch.tensor([0.4, 0.6])
    expected = (p * (p / q).log()).sum()
    assert (p * A.kl_k3(p.log(), q.log())).sum().item() == pytest.approx(expected.item())


def test_token_steps_give_separators_and_eos_to_the_step_they_close():
    text = "93 + 1 = 94 \n 94 - 7 = 87 \n answer 87"
    steps = ["93 + 1 = 94", "94 - 7 = 87", "answer 87"]
    spans = step_spans(text, steps)
    assert [text[a:b] for a, b in spans] == steps
    words = text.split(" ")
    offsets, cursor = [], 0
    for w in words:
        offsets.append((cursor, cursor + len(w)))
        cursor += len(w) + 1
    steps_of = token_steps(offsets, spans, len(offsets) + 1)  # + an end-of-sequence token
    assert steps_of == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2]
    with pytest.raises(ValueError, match="not found"):
        step_spans(text, ["94 - 7 = 88"])


def test_eval_curve_reads_evaluation_lines_only(tmp_path):
    from openr_rl.curves import eval_curve

    (tmp_path / "train_log.jsonl").write_text(
        '{"update": 0, "rollouts": 0, "test_accuracy": 0.43}\n'
        '{"update": 1, "rollouts": 512, "reward": 0.2, "loss": 0.1}\n'
        '{"update": 1, "rollouts": 512, "test_accuracy": 0.47}\n')
    assert eval_curve(tmp_path) == ("test_accuracy", [(0, 0.43), (512, 0.47)])


def test_min_form_reweighting_by_hand():
    # PURE: r_k * softmax_k(-r / T); step rewards (0.9, 0.2, 0.7) at T = 0.1
    w = [math.exp(-9.0), math.exp(-2.0), math.exp(-7.0)]
    expected = [r * x / sum(w) for r, x in zip([0.9, 0.2, 0.7], w)]
    assert A.softmin_weighted([0.9, 0.2, 0.7], 0.1) == pytest.approx(expected, rel=1e-12)
    # e^-2 (1 + e^-7 + e^-5) = 0.136370: (0.9 * 1.234e-4, 0.2 * 0.135335, 0.7 * 9.119e-4) / 0.136370
    assert expected == pytest.approx([8.14e-4, 0.19848, 4.68e-3], abs=1e-5)
    # returns from each step: a soft min, 0.204, up to the worst step, then what is left
    assert A.suffix_sums(expected) == pytest.approx([0.20398, 0.20316, 0.00468], abs=1e-5)
    assert A.softmin_weighted([], 0.1) == []
    # T -> 0: the reweighted rewards sum to the exact min, from every step up to the worst one
    tiny = A.suffix_sums(A.softmin_weighted([0.9, 0.2, 0.7], 1e-4))
    assert tiny == pytest.approx([0.2, 0.2, 0.0], abs=1e-12)
    # T -> infinity: uniform weights, the mean
    assert sum(A.softmin_weighted([0.9, 0.2, 0.7], 1e6)) == pytest.approx(0.6, abs=1e-6)


def test_grpo_min_credit_normalises_the_reweighted_rewards_then_sums():
    # T -> 0: (0.9, 0.2, 0.7) -> (0, 0.2, 0) and (0.5, 0.5) -> (0.25, 0.25) (a tie shares the weight);
    # group mean 0.7 / 5 = 0.14, centred (-0.14, 0.06, -0.14), (0.11, 0.11), then the returns
    algorithm = GRPO(GRPOConfig(model="x", reward="prm", group_size=2, process_credit="min", min_temperature=1e-4,
                                scale_advantages=False), {}, None)
    out = algorithm.process_advantages([[0.9, 0.2, 0.7], [0.5, 0.5]])
    assert out[0] == pytest.approx([-0.22, -0.08, -0.14], abs=1e-6)
    assert out[1] == pytest.approx([0.22, 0.11], abs=1e-6)
    # sum-form (process_credit: return) is DeepSeekMath on the raw scores, unchanged
    summed = attrs.evolve(algorithm.config, process_credit="return")
    assert GRPO(summed, {}, None).process_advantages([[0.9, 0.2, 0.7], [0.5, 0.5]]) == \
        [pytest.approx(x) for x in A.process_supervision([[[0.9, 0.2, 0.7], [0.5, 0.5]]], scale=False)[0]]
    # a fourth, good step: sum-form pays for it (first-step return 0.12 -> 3.7 - 6 * 0.6167 = 0.2333,
    # group mean 2.8 / 5 -> 3.7 / 6); min-form does not (-0.22 -> 0.2 - 4 * 0.7 / 6 = -0.2667)
    longer = [[0.9, 0.2, 0.7, 0.9], [0.5, 0.5]]
    assert GRPO(summed, {}, None).process_advantages([[0.9, 0.2, 0.7], [0.5, 0.5]])[0][0] == pytest.approx(0.12)
    assert GRPO(summed, {}, None).process_advantages(longer)[0][0] == pytest.approx(0.7 / 3)
    assert algorithm.process_advantages(longer)[0][0] == pytest.approx(0.2 - 4 * 0.7 / 6, abs=1e-6)
