"""The preference losses against their papers' formulas written out by hand (Python floats, the math module), the
per-sequence log-probabilities against log_softmax, and the batches `swift rlhf` lays out."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _tiny import IGNORE, VOCAB, tiny_llama
from swift_train import varlen
from swift_train.loss import Head, find_head, hidden_states, sequence_logps
from swift_train.preference import losses
from swift_train.preference.batch import PreferenceCollator, sequence_index

# Three pairs: summed log-probabilities of the chosen and rejected answers under the policy and the reference.
POLICY_CHOSEN = [-12.5, -30.25, -7.0]
POLICY_REJECTED = [-14.0, -28.5, -9.75]
REFERENCE_CHOSEN = [-13.0, -29.0, -8.5]
REFERENCE_REJECTED = [-13.25, -29.5, -9.0]
# Per-token means (orpo, simpo): log-probabilities of at most 0.
MEAN_CHOSEN = [-0.75, -1.5, -0.2]
MEAN_REJECTED = [-1.25, -0.9, -2.0]
BETA = 0.1


def t(values: list[float], grad: bool = False) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32, requires_grad=grad)


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def close(tensor: torch.Tensor, expected: list[float], tol: float = 1e-5) -> bool:
    return tensor.shape == (len(expected),) and all(
        math.isclose(a, b, rel_tol=tol, abs_tol=tol) for a, b in zip(tensor.tolist(), expected))


# -- DPO and its variants ------------------------------------------------------------------------


def dpo_by_hand(loss_type: str, beta: float, eps: float) -> list[float]:
    """Each paper's per-pair loss, with r_w, r_l the policy/reference log-ratios of the chosen and rejected answer."""
    out = []
    for pc, pr, rc, rr in zip(POLICY_CHOSEN, POLICY_REJECTED, REFERENCE_CHOSEN, REFERENCE_REJECTED):
        r_w, r_l = pc - rc, pr - rr
        h = r_w - r_l  # the DPO logit: log pi(y_w)/ref(y_w) - log pi(y_l)/ref(y_l)
        if loss_type in ("sigmoid", "sigmoid_norm"):  # Rafailov et al. eq. 7; conservative DPO mixes in the flip
            value = -(1 - eps) * log_sigmoid(beta * h) - eps * log_sigmoid(-beta * h)
        elif loss_type == "robust":  # Chowdhury et al. eq. 6
            value = (-(1 - eps) * log_sigmoid(beta * h) + eps * log_sigmoid(-beta * h)) / (1 - 2 * eps)
        elif loss_type == "hinge":  # SLiC-HF
            value = max(0.0, 1 - beta * h)
        elif loss_type == "ipo":  # Azar et al. eq. 17
            value = (h - 1 / (2 * beta)) ** 2
        elif loss_type == "apo_zero":
            value = (1 - sigmoid(beta * r_w)) + sigmoid(beta * r_l)
        elif loss_type == "apo_down":
            value = sigmoid(beta * r_w) + (1 - sigmoid(beta * (r_w - r_l)))
        elif loss_type == "sppo_hard":
            value = (r_w - 1 / (2 * beta)) ** 2 + (r_l + 1 / (2 * beta)) ** 2
        elif loss_type == "nca_pair":
            value = -log_sigmoid(beta * r_w) - 0.5 * log_sigmoid(-beta * r_w) - 0.5 * log_sigmoid(-beta * r_l)
        elif loss_type == "exo_pair":  # Ji et al. eq. 16: KL(p_theta || p_eps) over the pair's two orderings
            p = sigmoid(beta * h)
            value = p * (math.log(p) - math.log(1 - eps)) + (1 - p) * (math.log(1 - p) - math.log(eps))
        else:
            raise AssertionError(loss_type)
        out.append(value)
    return out


def aot_by_hand(paired: bool, beta: float, eps: float) -> list[float]:
    """AOT (Melnyk et al.): sigmoid DPO on sorted margins, batch-wise (first-order stochastic dominance)."""
    if paired:  # the policy's margins, sorted, against the reference's margins, sorted
        first = sorted(c - r for c, r in zip(POLICY_CHOSEN, POLICY_REJECTED))
        second = sorted(c - r for c, r in zip(REFERENCE_CHOSEN, REFERENCE_REJECTED))
    else:  # the chosen log-ratios, sorted, against the rejected ones, sorted
        first = sorted(p - r for p, r in zip(POLICY_CHOSEN, REFERENCE_CHOSEN))
        second = sorted(p - r for p, r in zip(POLICY_REJECTED, REFERENCE_REJECTED))
    return [-(1 - eps) * log_sigmoid(beta * (a - b)) - eps * log_sigmoid(-beta * (a - b)) for a, b in zip(first, second)]


def smoothing_for(loss_type: str) -> float:
    return {"exo_pair": 1e-3, "robust": 0.2, "aot": 0.1}.get(loss_type, 0.0)


@pytest.mark.parametrize("loss_type", losses.DPO_LOSS_TYPES)
def test_every_dpo_loss_type_is_its_papers_formula(loss_type: str) -> None:
    eps = smoothing_for(loss_type)
    beta = 0.5 if loss_type in ("hinge", "ipo", "sppo_hard") else BETA  # inside the hinge's slope for one pair
    tensors = [t(POLICY_CHOSEN, grad=True), t(POLICY_REJECTED, grad=True), t(REFERENCE_CHOSEN), t(REFERENCE_REJECTED)]
    loss, chosen_reward, rejected_reward = losses.dpo(*tensors, beta=beta, label_smoothing=eps, loss_type=loss_type)
    if loss_type in ("aot", "aot_unpaired"):
        expected = aot_by_hand(loss_type == "aot", beta, eps)
    else:
        expected = dpo_by_hand(loss_type, beta, eps)
    assert close(loss, expected), (loss.tolist(), expected)
    # The rewards the logs show: beta times each answer's log-ratio, without gradient.
    assert close(chosen_reward, [beta * (p - r) for p, r in zip(POLICY_CHOSEN, REFERENCE_CHOSEN)])
    assert close(rejected_reward, [beta * (p - r) for p, r in zip(POLICY_REJECTED, REFERENCE_REJECTED)])
    assert not chosen_reward.requires_grad and not rejected_reward.requires_grad
    loss.sum().backward()
    assert tensors[0].grad is not None and tensors[0].grad.abs().sum() > 0


def test_hinge_is_zero_past_the_margin() -> None:
    loss, _, _ = losses.dpo(t(POLICY_CHOSEN), t(POLICY_REJECTED), t(REFERENCE_CHOSEN), t(REFERENCE_REJECTED),
                            beta=0.5, loss_type="hinge")
    assert close(loss, [1 - 0.5 * 1.25, 1 + 0.5 * 2.25, 0.0])  # the DPO logits are 1.25, -2.25 and 2.25


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_label_smoothing_is_conservative_dpo(eps: float) -> None:
    loss, _, _ = losses.dpo(t(POLICY_CHOSEN), t(POLICY_REJECTED), t(REFERENCE_CHOSEN), t(REFERENCE_REJECTED),
                            beta=BETA, label_smoothing=eps)
    assert close(loss, dpo_by_hand("sigmoid", BETA, eps))
    if eps:  # smoothing changes the loss of sigmoid dpo
        plain, _, _ = losses.dpo(t(POLICY_CHOSEN), t(POLICY_REJECTED), t(REFERENCE_CHOSEN), t(REFERENCE_REJECTED),
                                 beta=BETA)
        assert not torch.allclose(loss, plain)


def test_an_unknown_loss_type_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown DPO loss_type"):
        losses.dpo(t([0.0]), t([0.0]), t([0.0]), t([0.0]), beta=BETA, loss_type="nope")
    with pytest.raises(ValueError, match="unknown CPO loss_type"):
        losses.cpo(t([0.0]), t([0.0]), beta=BETA, loss_type="robust")


# -- reference-free ------------------------------------------------------------------------------


@pytest.mark.parametrize("loss_type", losses.CPO_LOSS_TYPES)
def test_every_cpo_loss_type_is_its_formula(loss_type: str) -> None:
    eps = 0.1 if loss_type == "sigmoid" else 0.0
    loss, chosen_reward, rejected_reward = losses.cpo(t(POLICY_CHOSEN), t(POLICY_REJECTED), beta=BETA,
                                                      label_smoothing=eps, loss_type=loss_type)
    expected = []
    for pc, pr in zip(POLICY_CHOSEN, POLICY_REJECTED):
        h = pc - pr  # Xu et al.: DPO's logit with the reference dropped
        expected.append({"sigmoid": -(1 - eps) * log_sigmoid(BETA * h) - eps * log_sigmoid(-BETA * h),
                         "hinge": max(0.0, 1 - BETA * h), "ipo": (h - 1 / (2 * BETA)) ** 2}[loss_type])
    assert close(loss, expected)
    assert close(chosen_reward, [BETA * v for v in POLICY_CHOSEN])
    assert close(rejected_reward, [BETA * v for v in POLICY_REJECTED])


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_simpo_is_its_formula(eps: float) -> None:
    beta, gamma = 2.0, 0.5
    loss, chosen_reward, rejected_reward = losses.simpo(t(MEAN_CHOSEN), t(MEAN_REJECTED), beta=beta, gamma=gamma,
                                                        label_smoothing=eps)
    expected = []
    for c, r in zip(MEAN_CHOSEN, MEAN_REJECTED):  # Meng et al. eq. 6: beta/|y| log pi, a target margin gamma
        z = beta * c - beta * r - gamma
        expected.append(-(1 - eps) * log_sigmoid(z) - eps * log_sigmoid(-z))
    assert close(loss, expected)
    assert close(chosen_reward, [beta * v for v in MEAN_CHOSEN])
    assert close(rejected_reward, [beta * v for v in MEAN_REJECTED])


def test_orpo_is_its_formula() -> None:
    beta = 0.25
    chosen, rejected = t(MEAN_CHOSEN, grad=True), t(MEAN_REJECTED, grad=True)
    loss, chosen_reward, rejected_reward = losses.orpo(chosen, rejected, beta=beta)
    expected = []
    for c, r in zip(MEAN_CHOSEN, MEAN_REJECTED):  # Hong et al. eq. 4-7: odds(y) = P / (1 - P), P = exp(mean log p)
        odds_c, odds_r = math.exp(c) / (1 - math.exp(c)), math.exp(r) / (1 - math.exp(r))
        expected.append(-beta * log_sigmoid(math.log(odds_c / odds_r)))
    assert close(loss, expected)
    assert close(chosen_reward, [beta * v for v in MEAN_CHOSEN])
    assert close(rejected_reward, [beta * v for v in MEAN_REJECTED])
    loss.sum().backward()
    assert (chosen.grad < 0).all() and (rejected.grad > 0).all()  # lowering the loss raises chosen, lowers rejected


@pytest.mark.parametrize("kl_value", [0.8, -0.6])
def test_kto_is_its_formula_with_the_kl_clamped_and_detached(kl_value: float) -> None:
    policy, reference = [-10.0, -12.5, -8.0, -20.0], [-10.5, -12.0, -9.0, -19.0]
    desirable = [True, False, True, False]
    beta, w_d, w_u = 0.3, 1.5, 0.75
    kl = torch.tensor(kl_value, requires_grad=True)
    policy_t = t(policy, grad=True)
    loss, rewards = losses.kto(policy_t, t(reference), torch.tensor(desirable), kl, beta=beta, desirable_weight=w_d,
                               undesirable_weight=w_u)
    z0 = max(kl_value, 0.0)  # Ethayarajh et al.: the reference point, clipped at 0
    expected = []
    for p, r, good in zip(policy, reference, desirable):
        ratio = p - r
        expected.append(w_d * (1 - sigmoid(beta * (ratio - z0))) if good else w_u * (1 - sigmoid(beta * (z0 - ratio))))
    assert close(loss, expected)
    assert close(rewards, [beta * (p - r) for p, r in zip(policy, reference)]) and not rewards.requires_grad
    loss.sum().backward()
    assert kl.grad is None  # no gradient through the reference point
    assert policy_t.grad is not None and (policy_t.grad[[0, 2]] < 0).all() and (policy_t.grad[[1, 3]] > 0).all()


def test_reward_model_is_bradley_terry() -> None:
    chosen, rejected = [1.5, -0.25, 0.0], [0.5, 0.75, -2.0]
    loss = losses.reward_model(t(chosen), t(rejected))
    assert close(loss, [-log_sigmoid(c - r) for c, r in zip(chosen, rejected)])


def test_which_algorithms_compare_per_token_means() -> None:
    assert losses.uses_mean("orpo", None) and losses.uses_mean("simpo", None)
    assert losses.uses_mean("dpo", "ipo") and losses.uses_mean("dpo", "sigmoid_norm")
    assert not losses.uses_mean("dpo", "sigmoid") and not losses.uses_mean("dpo", None)
    assert not losses.uses_mean("cpo", "sigmoid") and not losses.uses_mean("kto", None)


# -- per-sequence log-probabilities -------------------------------------------------------------


def pair_samples(seed: int = 3) -> list[dict[str, np.ndarray]]:
    """Two pairs of different lengths; each answer shares its pair's prompt (label -100) and is trained after it."""
    rng = np.random.default_rng(seed)
    out = []
    for prompt_len, chosen_len, rejected_len in ((4, 5, 3), (6, 2, 7)):
        prompt = rng.integers(0, VOCAB, prompt_len)
        sample = {}
        for side, n in (("chosen", chosen_len), ("rejected", rejected_len)):
            answer = rng.integers(0, VOCAB, n)
            sample[f"{side}_input_ids"] = np.concatenate([prompt, answer]).astype(np.int64)
            sample[f"{side}_labels"] = np.concatenate([np.full(prompt_len, IGNORE), answer]).astype(np.int64)
        out.append(sample)
    return out


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if k != "labels"}


def by_hand(model, sequences: list[tuple[np.ndarray, np.ndarray]]) -> tuple[list[float], list[int]]:
    """Each sequence run alone: sum over trained targets of log_softmax(logits)[target], and their count."""
    sums, counts = [], []
    for ids, labels in sequences:
        logits = model(input_ids=torch.as_tensor(ids)[None]).logits[0, :-1].double()
        logps = torch.log_softmax(logits, -1)
        total = 0.0
        for position, target in enumerate(labels[1:].tolist()):
            if target != IGNORE:
                total += float(logps[position, target])
        sums.append(total)
        counts.append(int((labels[1:] != IGNORE).sum()))
    return sums, counts


def logps_and_grads(model, batch: dict[str, torch.Tensor], head: Head | None):
    model.zero_grad()
    index, count = sequence_index(batch)
    extra = varlen.batch_kwargs(model, batch)
    if head is not None:
        hidden, _ = hidden_states(model, head, model_inputs(batch), **extra)
        sums, tokens = sequence_logps(head, hidden, batch["labels"], index, count)
    else:
        logits = model(**model_inputs(batch), use_cache=False, **extra).logits
        sums, tokens = sequence_logps(None, logits, batch["labels"], index, count)
    sums.sum().backward()
    return sums.detach(), tokens, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("flatten", [False, True], ids=["padded", "flattened"])
def test_sequence_logps_chunked_equals_full_logits_and_log_softmax(flatten: bool) -> None:
    model = tiny_llama(tied=False)
    varlen.enable(model)  # as swift rlhf does: a flattened row's sequences attend only to themselves
    samples = pair_samples()
    batch = PreferenceCollator(pad_token_id=0, rlhf_type="dpo", flatten=flatten)(samples)
    assert ("position_ids" in batch) is flatten and ("attention_mask" in batch) is not flatten
    index, count = sequence_index(batch)
    assert count == 4
    if flatten:
        lengths = [9, 8, 7, 13]  # chosen 0, chosen 1, rejected 0, rejected 1
        assert index[0].tolist() == [i for i, n in enumerate(lengths) for _ in range(n)]

    head = find_head(model)
    assert isinstance(head, Head)
    head.chunk_tokens = 3  # several chunks, the last one partial (16 trained tokens)
    chunked, chunked_tokens, chunked_grads = logps_and_grads(model, batch, head)
    full, full_tokens, full_grads = logps_and_grads(model, batch, None)

    sequences = [(s[f"{side}_input_ids"], s[f"{side}_labels"]) for side in ("chosen", "rejected") for s in samples]
    with torch.no_grad():
        expected, counts = by_hand(model, sequences)
    assert chunked_tokens.tolist() == full_tokens.tolist() == counts == [5, 2, 3, 7]
    assert chunked.dtype == torch.float32
    assert torch.allclose(chunked, full, atol=1e-5)
    assert close(chunked, expected, tol=1e-4), (chunked.tolist(), expected)
    assert chunked_grads.keys() == full_grads.keys() and "lm_head.weight" in chunked_grads
    for name, grad in chunked_grads.items():
        assert torch.allclose(grad, full_grads[name], atol=1e-5), name
    assert any(g.abs().sum() > 0 for g in chunked_grads.values())


def test_padded_and_flattened_batches_give_the_same_log_probabilities() -> None:
    model = tiny_llama(tied=True)
    varlen.enable(model)
    samples = pair_samples(seed=5)
    results = []
    for flatten in (False, True):
        batch = PreferenceCollator(pad_token_id=0, rlhf_type="dpo", flatten=flatten)(samples)
        head = find_head(model)
        head.chunk_tokens = 3
        results.append(logps_and_grads(model, batch, head))
    (padded, padded_tokens, padded_grads), (flat, flat_tokens, flat_grads) = results
    assert padded_tokens.tolist() == flat_tokens.tolist()
    assert torch.allclose(padded, flat, atol=1e-5)
    for name, grad in padded_grads.items():
        assert torch.allclose(grad, flat_grads[name], atol=1e-5), name


# -- batches ------------------------------------------------------------------------------------


def test_a_pair_batch_holds_the_chosen_answers_then_the_rejected_ones() -> None:
    samples = pair_samples()
    batch = PreferenceCollator(pad_token_id=7, rlhf_type="dpo")(samples)
    order = [samples[0]["chosen_input_ids"], samples[1]["chosen_input_ids"], samples[0]["rejected_input_ids"],
             samples[1]["rejected_input_ids"]]
    labels = [samples[0]["chosen_labels"], samples[1]["chosen_labels"], samples[0]["rejected_labels"],
              samples[1]["rejected_labels"]]
    width = max(len(o) for o in order)
    assert batch["input_ids"].shape == (4, width)
    for row, (ids, lab) in enumerate(zip(order, labels)):
        n = len(ids)
        assert batch["input_ids"][row, :n].tolist() == ids.tolist() and (batch["input_ids"][row, n:] == 7).all()
        assert batch["labels"][row, :n].tolist() == lab.tolist() and (batch["labels"][row, n:] == IGNORE).all()
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (width - n)

    flat = PreferenceCollator(pad_token_id=7, rlhf_type="dpo", flatten=True)(samples)
    assert set(flat) == {"input_ids", "labels", "position_ids"}
    assert flat["input_ids"][0].tolist() == np.concatenate(order).tolist()
    assert flat["labels"][0].tolist() == np.concatenate(labels).tolist()
    assert flat["position_ids"][0].tolist() == [i for o in order for i in range(len(o))]


def kto_row(prompt: list[int], answer: list[int], desirable: bool) -> dict[str, np.ndarray]:
    return {"input_ids": np.array(prompt + answer), "labels": np.array([IGNORE] * len(prompt) + answer),
            "desirable": np.asarray(desirable)}


def test_a_kto_batch_appends_the_mismatched_sequences_of_the_kl_estimate() -> None:
    rows = [kto_row([1, 2, 3], [10, 11], True), kto_row([4, 5], [20, 21, 22], False), kto_row([6], [30], True)]
    batch = PreferenceCollator(pad_token_id=0, rlhf_type="kto", flatten=True)(rows)
    expected_ids = [
        [1, 2, 3, 10, 11], [4, 5, 20, 21, 22], [6, 30],  # the answers
        [1, 2, 3, 20, 21, 22], [4, 5, 30], [6, 10, 11],  # prompt i + answer i+1 (the last wraps to the first)
    ]
    expected_labels = [
        [IGNORE] * 3 + [10, 11], [IGNORE] * 2 + [20, 21, 22], [IGNORE, 30],
        [IGNORE] * 3 + [20, 21, 22], [IGNORE] * 2 + [30], [IGNORE, 10, 11],
    ]
    assert batch["input_ids"][0].tolist() == sum(expected_ids, [])
    assert batch["labels"][0].tolist() == sum(expected_labels, [])
    assert batch["position_ids"][0].tolist() == [i for s in expected_ids for i in range(len(s))]
    assert batch["desirable"].tolist() == [True, False, True]
    assert sequence_index(batch)[1] == 6

    padded = PreferenceCollator(pad_token_id=0, rlhf_type="kto")(rows)
    for row, (ids, labels) in enumerate(zip(expected_ids, expected_labels)):
        assert padded["input_ids"][row, : len(ids)].tolist() == ids
        assert padded["labels"][row].tolist() == labels + [IGNORE] * (6 - len(labels))


def test_a_paired_row_in_a_kto_batch_is_a_desirable_and_an_undesirable_answer() -> None:
    paired = {"chosen_input_ids": np.array([1, 2, 10]), "chosen_labels": np.array([IGNORE, IGNORE, 10]),
              "rejected_input_ids": np.array([1, 2, 20, 21]), "rejected_labels": np.array([IGNORE, IGNORE, 20, 21])}
    rows = [paired, kto_row([5], [30, 31], False)]
    batch = PreferenceCollator(pad_token_id=0, rlhf_type="kto", flatten=True)(rows)
    assert batch["desirable"].tolist() == [True, False, False]
    # The KL sequences pair each answer with the next one given to ANOTHER prompt: the paired row's chosen answer
    # with its own prompt's rejected one would be a matched sequence, not a mismatched one.
    expected = [[1, 2, 10], [1, 2, 20, 21], [5, 30, 31], [1, 2, 30, 31], [1, 2, 30, 31], [5, 10]]
    assert batch["input_ids"][0].tolist() == sum(expected, [])
    assert batch["labels"][0].tolist() == [IGNORE, IGNORE, 10, IGNORE, IGNORE, 20, 21, IGNORE, 30, 31,
                                           IGNORE, IGNORE, 30, 31, IGNORE, IGNORE, 30, 31, IGNORE, 10]


def test_a_reward_model_batch_is_right_padded_chosen_then_rejected() -> None:
    rows = [{"chosen_input_ids": np.array([1, 2, 3]), "rejected_input_ids": np.array([1, 2])},
            {"chosen_input_ids": np.array([4]), "rejected_input_ids": np.array([4, 5, 6, 7])}]
    batch = PreferenceCollator(pad_token_id=9, rlhf_type="rm", flatten=True)(rows)  # rm never flattens
    assert batch["input_ids"].tolist() == [[1, 2, 3, 9], [4, 9, 9, 9], [1, 2, 9, 9], [4, 5, 6, 7]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]]


def test_a_flattened_sequence_starting_with_a_trained_token_is_not_scored_from_its_neighbour() -> None:
    """The first token of a sequence has no prediction inside it: padded rows never score it, nor may a flat row."""
    from swift_train.loss import sequence_logps
    from swift_train.preference.batch import Sequence, sequence_index

    torch.manual_seed(0)
    logits_of = torch.nn.Embedding(40, 40)  # stands in for a model: logits from each position's own token
    sequences = [Sequence(np.array([1, 2, 3]), np.array([IGNORE, 2, 3])),
                 Sequence(np.array([9, 10, 11]), np.array([9, 10, 11]))]  # trained from its very first token
    results = []
    for flatten in (False, True):
        batch = PreferenceCollator(pad_token_id=0, rlhf_type="dpo", flatten=flatten).lay_out(sequences)
        index, count = sequence_index(batch)
        sums, tokens = sequence_logps(None, logits_of(batch["input_ids"]), batch["labels"], index, count)
        results.append((sums, tokens))
    (padded, padded_tokens), (flat, flat_tokens) = results
    assert padded_tokens.tolist() == flat_tokens.tolist() == [2, 2]
    assert torch.allclose(padded, flat)


@pytest.mark.gpu
def test_cuda_flattened_pairs_score_like_padded_ones_bf16() -> None:
    """On a GPU the flattened layout runs PyTorch's varlen FlashAttention: the same log-probabilities and
    gradients as padded rows through sdpa, to bf16 precision."""
    from swift_train.preference.batch import Sequence

    model = tiny_llama().to("cuda", torch.bfloat16)
    varlen.enable(model)  # padded rows (with an attention_mask) still go through sdpa
    rng = np.random.default_rng(0)
    sequences = []
    for prompt, answer in [(20, 9), (5, 30), (41, 3), (12, 17)]:
        ids = rng.integers(1, VOCAB, prompt + answer)
        sequences.append(Sequence(ids, np.concatenate([np.full(prompt, IGNORE), ids[prompt:]])))
    results = []
    for flatten in (False, True):
        model.zero_grad()
        batch = {k: v.cuda() for k, v in PreferenceCollator(0, "dpo", flatten=flatten).lay_out(sequences).items()}
        labels = batch.pop("labels")
        index, count = sequence_index(batch)
        logits = model(**batch, use_cache=False, **varlen.batch_kwargs(model, batch)).logits
        sums, tokens = sequence_logps(None, logits, labels, index, count)
        sums.sum().backward()
        results.append((sums.float().cpu(), tokens.cpu(), model.model.layers[0].self_attn.q_proj.weight.grad.float().cpu()))
    (padded, padded_tokens, padded_grad), (flat, flat_tokens, flat_grad) = results
    assert padded_tokens.tolist() == flat_tokens.tolist() == [9, 30, 3, 17]
    assert torch.allclose(padded, flat, rtol=2e-2, atol=0.5), (padded, flat)
    assert torch.allclose(padded_grad, flat_grad, rtol=5e-2, atol=5e-2)
