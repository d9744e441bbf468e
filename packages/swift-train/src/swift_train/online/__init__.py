"""Online RL for `swift rlhf`: grpo and ppo train on answers the policy writes during training.

  rollout.py   completions from the policy being trained (swift-infer's continuous batcher, or vLLM)
  batches.py   the prompt sampler and the [prompt | completion] layout the losses read
  losses.py    the GRPO and PPO objectives on plain tensors (GAE, clipping, KL)
  grpo.py      the GRPO trainer: groups of completions per prompt, rewards from functions and models
  ppo.py       the PPO trainer: a reward model's score, a value model, GAE
"""
