"""The online RL objectives against values computed by hand (swift_train/online/losses.py, batches.py)."""

from __future__ import annotations

import math

import pytest
import torch
from swift_train.online import losses
from swift_train.online.batches import GroupSampler, lay_out, token_logps


def test_group_advantages_are_relative_to_the_group_and_zero_for_an_all_equal_group() -> None:
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.5, 0.5])
    advantages, stds = losses.group_advantages(rewards, group_size=4)
    std = torch.tensor([1.0, 0.0, 0.0, 0.0]).std()  # unbiased, as TRL
    expected = (torch.tensor([1.0, 0.0, 0.0, 0.0]) - 0.25) / (std + losses.STD_EPSILON)
    assert torch.allclose(advantages[:4], expected)
    assert advantages[4:].tolist() == [0.0] * 4
    assert stds[1] == 0 and stds[0] == pytest.approx(float(std))


def test_grpo_loss_without_old_logps_is_minus_the_mean_advantage_and_adds_beta_times_k3() -> None:
    logps = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, -0.5, -0.5]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])  # the first row's third token is padding
    advantages = torch.tensor([2.0, -1.0])
    plain = losses.grpo_loss(logps, None, None, advantages, mask, beta=0.0, epsilon=0.2)
    assert float(plain.loss) == pytest.approx(-(2.0 + -1.0) / 2)
    ref = torch.tensor([[-1.5, -2.0, 9.0], [-0.5, 0.0, -0.5]])
    with_kl = losses.grpo_loss(logps, None, ref, advantages, mask, beta=0.1, epsilon=0.2)

    def k3(p: float, r: float) -> float:
        return math.exp(r - p) - (r - p) - 1

    row1 = (k3(-1.0, -1.5) + k3(-2.0, -2.0)) / 2
    row2 = (k3(-0.5, -0.5) + k3(-0.5, 0.0) + k3(-0.5, -0.5)) / 3
    assert float(with_kl.loss) == pytest.approx(-0.5 + 0.1 * (row1 + row2) / 2, rel=1e-5)
    assert float(with_kl.kl) == pytest.approx((k3(-1.0, -1.5) + k3(-0.5, 0.0)) / 5, rel=1e-5)


def test_grpo_loss_clips_the_ratio_on_the_side_the_advantage_would_exploit() -> None:
    old = torch.zeros(2, 1)
    logps = torch.log(torch.tensor([[1.5], [0.5]]))  # ratios 1.5 and 0.5
    mask = torch.ones(2, 1)
    up = losses.grpo_loss(logps, old, None, torch.tensor([1.0, 1.0]), mask, beta=0.0, epsilon=0.2)
    # advantage > 0: min(1.5, 1.2) * 1 = 1.2 for the first; min(0.5, 0.8) = 0.5 for the second
    assert float(up.loss) == pytest.approx(-(1.2 + 0.5) / 2)
    assert float(up.clip_ratio) == pytest.approx(0.5)
    down = losses.grpo_loss(logps, old, None, torch.tensor([-1.0, -1.0]), mask, beta=0.0, epsilon=0.2)
    # advantage < 0: min(-1.5, -1.2) = -1.5; min(-0.5, -0.8) = -0.8
    assert float(down.loss) == pytest.approx((1.5 + 0.8) / 2)
    assert float(down.clip_ratio) == pytest.approx(0.5)


def test_gae_matches_the_recursion_unrolled_by_hand() -> None:
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.5, 2.0, 7.0]])
    values = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])  # the second completion has two tokens
    gamma, lam = 0.9, 0.8
    advantages, returns = losses.gae(rewards, values, mask, gamma, lam)
    d2 = 1.0 - 0.3
    d1 = 0.0 + gamma * 0.3 - 0.2
    d0 = 0.0 + gamma * 0.2 - 0.1
    a2, a1 = d2, d1 + gamma * lam * d2
    a0 = d0 + gamma * lam * a1
    assert advantages[0].tolist() == pytest.approx([a0, a1, a2])
    e1 = 2.0 - 0.5  # the padding token's value and reward count as 0
    e0 = 0.5 + gamma * 0.5 - 0.4 + gamma * lam * e1
    assert advantages[1].tolist() == pytest.approx([e0, e1, 0.0])
    assert returns[0].tolist() == pytest.approx([a0 + 0.1, a1 + 0.2, a2 + 0.3])


def test_ppo_rewards_put_the_score_on_the_last_real_token_and_the_kl_penalty_everywhere() -> None:
    logps = torch.tensor([[-1.0, -1.0, -1.0], [-2.0, -2.0, -2.0]])
    ref = torch.tensor([[-1.5, -1.0, -0.5], [-2.0, -1.0, -2.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    rewards, kl = losses.ppo_rewards(torch.tensor([3.0, -1.0]), logps, ref, mask, kl_coef=0.1)
    assert torch.allclose(kl, torch.tensor([[0.5, 0.0, -0.5], [0.0, -1.0, 0.0]]))
    assert torch.allclose(rewards, torch.tensor([[-0.05, 0.0, 0.05 + 3.0], [0.0, 0.1 - 1.0, 0.0]]))


def test_ppo_loss_clips_policy_and_value() -> None:
    mask = torch.ones(1, 2)
    logps = torch.log(torch.tensor([[1.5, 1.0]]))
    old = torch.zeros(1, 2)
    advantages = torch.tensor([[1.0, -2.0]])
    values, old_values, returns = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]]), torch.tensor([[2.0, 1.0]])
    out = losses.ppo_loss(logps, old, advantages, values, old_values, returns, mask, cliprange=0.2,
                          cliprange_value=0.5, vf_coef=0.1)
    # policy: max(-1 * 1.5, -1 * 1.2) = -1.2; max(2 * 1, 2 * 1) = 2 -> mean 0.4
    assert float(out.policy_loss) == pytest.approx(0.4)
    # value: token 1 max((1-2)^2, (0.5-2)^2) = 2.25; token 2 max(1, 1) = 1 -> 0.5 * mean = 0.8125
    assert float(out.value_loss) == pytest.approx(0.8125)
    assert float(out.loss) == pytest.approx(0.4 + 0.1 * 0.8125)
    assert float(out.clip_ratio) == pytest.approx(0.5) and float(out.value_clip_ratio) == pytest.approx(0.5)


def test_whiten_gives_zero_mean_unit_variance_over_the_mask() -> None:
    values = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    whitened = losses.whiten(values, mask)
    assert float(losses.masked_mean(whitened, mask)) == pytest.approx(0.0, abs=1e-6)
    assert float(losses.masked_mean(whitened**2, mask)) == pytest.approx(1.0, rel=1e-4)


def test_group_sampler_repeats_each_prompt_and_each_window() -> None:
    sampler = GroupSampler(size=10, group=4, window=8, repeats=2, seed=0)
    order = list(sampler)
    assert len(order) == len(sampler) == (10 // 2) * 8 * 2
    first_window = order[:8]
    assert first_window[:4] == [first_window[0]] * 4 and first_window[4:] == [first_window[4]] * 4
    assert order[8:16] == first_window  # trained on again (num_iterations 2)
    assert list(GroupSampler(10, 4, 8, 2, seed=0)) == order
    sampler.set_epoch(1)
    assert list(sampler) != order


def test_lay_out_pads_prompts_left_completions_right_and_counts_positions_from_the_first_token() -> None:
    sequences = lay_out([[5, 6, 7], [8]], [[1], [2, 3]], pad_id=0)
    assert sequences.input_ids.tolist() == [[5, 6, 7, 1, 0], [0, 0, 8, 2, 3]]
    assert sequences.attention_mask.tolist() == [[1, 1, 1, 1, 0], [0, 0, 1, 1, 1]]
    assert sequences.position_ids[1, 2:].tolist() == [0, 1, 2]
    assert sequences.completion_ids.tolist() == [[1, 0], [2, 3]]
    assert sequences.completion_mask.tolist() == [[1.0, 0.0], [1.0, 1.0]]


def test_chunked_token_logps_equal_the_full_logits_path_with_gradients() -> None:
    from _tiny import tiny_llama
    from swift_train.loss import find_head
    from swift_train.online.batches import token_logps

    torch.manual_seed(0)
    model = tiny_llama()
    head = find_head(model)
    head.chunk_tokens = 3  # several chunks for a handful of tokens
    sequences = lay_out([[5, 6, 7], [8]], [[1, 9, 4], [2, 3]], pad_id=0)
    full = token_logps(model, sequences, temperature=0.9)
    chunked = token_logps(model, sequences, temperature=0.9, head=head)
    assert torch.allclose(full, chunked, atol=1e-5)
    assert chunked[1, 2] == 0  # padding
    full.sum().backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    chunked.sum().backward()
    for grad, param in zip(expected, model.parameters()):
        assert torch.allclose(grad, param.grad, atol=1e-5)


def t(rows: list) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_grpo_loss_ignores_padding():
    logps, mask, advantages = t([[-1.0, -2.0, 0.0]]), t([[1, 1, 0]]), t([2.0])
    old, ref = t([[-1.1, -1.9, 0.0]]), t([[-0.9, -2.2, 0.0]])
    padded = losses.grpo_loss(logps, old, ref, advantages, mask, beta=0.1, epsilon=0.2)
    for junk in (50.0, -50.0):
        changed = lambda x: torch.cat([x[:, :2], t([[junk]])], 1)  # noqa: E731
        again = losses.grpo_loss(changed(logps), changed(old), changed(ref), advantages, mask, beta=0.1, epsilon=0.2)
        assert (again.loss.item(), again.kl.item(), again.clip_ratio.item()) == pytest.approx(
            (padded.loss.item(), padded.kl.item(), padded.clip_ratio.item()))
    short = losses.grpo_loss(logps[:, :2], old[:, :2], ref[:, :2], advantages, mask[:, :2], beta=0.1, epsilon=0.2)
    assert short.loss.item() == pytest.approx(padded.loss.item())


def test_token_logps_of_padded_rows_equal_each_row_alone():
    from _tiny import tiny_llama

    model = tiny_llama().eval()
    prompts, completions = [[5, 6, 7, 8], [9, 10]], [[11, 12], [13, 14, 15]]
    sequences = lay_out(prompts, completions, pad_id=0)
    with torch.no_grad():
        batched = token_logps(model, sequences, temperature=0.7)
        for row, (prompt, completion) in enumerate(zip(prompts, completions)):
            ids = torch.tensor([prompt + completion])
            logits = model(input_ids=ids).logits[0, len(prompt) - 1:-1] / 0.7
            alone = logits.log_softmax(-1).gather(-1, torch.tensor(completion)[:, None])[:, 0]
            assert batched[row, :len(completion)].tolist() == pytest.approx(alone.tolist(), abs=1e-4)
