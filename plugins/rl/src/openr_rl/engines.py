"""Rollouts from another engine: ``rollout_generator: {type: vllm, ...}`` samples the RL rollouts
with a vLLM engine, and the policy's weights are copied into it after every update (TRL's
colocate mode does the same: the trainer process owns the engine).

The copy goes through ``LLM.collective_rpc`` to a method that :class:`WeightSync` adds to every
vLLM worker (vLLM's ``worker_extension_cls``, as TRL's vLLM server does; vLLM refuses to ship
pickled functions to its workers), which hands the tensors to the vLLM model's own ``load_weights`` (HF parameter names, so vLLM's name mapping and fused
q/k/v and gate/up projections apply), then the prefix cache is reset: its KV blocks were
computed with the old weights.
"""

from __future__ import annotations

from openr_core.errors import ConfigError


def build(section: dict, policy_location: str):
    """The generator of a ``rollout_generator`` section (``model`` defaults to the policy's)."""
    from openr_core import get_component

    fields = dict(section)
    kind = fields.pop("type")
    if kind != "vllm":
        raise ConfigError(f"rollout_generator.type: only 'vllm' syncs weights from the policy, got {kind!r}")
    fields.setdefault("model", policy_location)
    fields["engine_args"] = {**fields.get("engine_args", {}), "worker_extension_cls": f"{__name__}.WeightSync"}
    return get_component("generator", kind, **fields)


class WeightSync:
    """Mixed into every vLLM worker: load the policy's parameters into its model."""

    def load_policy_weights(self, weights: list) -> int:
        import torch

        tensors = ((name, torch.frombuffer(bytearray(data), dtype=getattr(torch, dtype)).reshape(shape))
                   for name, dtype, shape, data in weights)
        # vLLM's in-place reload: it re-runs the loading steps a backend applies after load_weights
        # (the CPU backend repacks linear layers), which a bare model.load_weights would skip
        self.model_runner.reload_weights(weights_iterator=tensors)
        return len(weights)


def sync_weights(generator, policy) -> None:
    """Copy the policy's current parameters into the vLLM engine behind ``generator``."""
    import torch

    # raw bytes: vLLM's RPC encoding brings an untyped tensor argument back as a plain list
    weights = [(name, str(t.dtype).removeprefix("torch."), list(t.shape), t.detach().to("cpu").contiguous().view(-1)
                .view(torch.uint8).numpy().tobytes()) for name, t in policy.state_dict().items()]
    generator.llm.collective_rpc("load_policy_weights", args=(weights,))
    generator.llm.reset_prefix_cache()
