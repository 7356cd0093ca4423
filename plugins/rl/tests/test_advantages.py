import math

import pytest
import torch

from openr_rl import advantages as A
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
