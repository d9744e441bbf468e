"""Downloading a model from ModelScope (default) or the Hugging Face hub (--use_hf / USE_HF)."""

from __future__ import annotations

from pathlib import Path

from swift_args import ArgumentError

_OFFLINE_HINT = (
    "pass a local Hugging Face directory or .gguf file with --model /path/to/model, "
    "or use the built-in SmolLM2-135M-Instruct"
)


def download_model(model_id: str, *, use_hf: bool, revision: str | None = None, token: str | None = None) -> Path:
    """A local snapshot of `model_id`, from the local hub cache when it is there."""
    if use_hf:
        return _from_huggingface(model_id, revision, token)
    return _from_modelscope(model_id, revision, token)


def _from_huggingface(model_id: str, revision: str | None, token: str | None) -> Path:
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(huggingface_hub.snapshot_download(model_id, revision=revision, token=token))
    except RepositoryNotFoundError:
        raise ArgumentError(f"model '{model_id}' does not exist on the Hugging Face hub (or needs --hub_token)") from None
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise ArgumentError(
            f"cannot download model '{model_id}': the Hugging Face hub is unreachable and the model is not "
            f"in the local cache ({type(exc).__name__}); {_OFFLINE_HINT}"
        ) from None


def _from_modelscope(model_id: str, revision: str | None, token: str | None) -> Path:
    try:
        import modelscope
    except ImportError:
        raise ArgumentError(
            f"downloading '{model_id}' from ModelScope needs the modelscope package: pip install modelscope "
            "(or pass --use_hf true for the Hugging Face hub)"
        ) from None
    try:
        if token:
            modelscope.HubApi().login(token)
        return Path(modelscope.snapshot_download(model_id, revision=revision))
    except (ConnectionError, OSError) as exc:
        raise ArgumentError(
            f"cannot download model '{model_id}': ModelScope is unreachable and the model is not in the local "
            f"cache ({type(exc).__name__}); {_OFFLINE_HINT}"
        ) from None
    except Exception as exc:  # modelscope raises its own error types for missing repos
        raise ArgumentError(f"cannot download model '{model_id}' from ModelScope: {str(exc).splitlines()[0]}") from None
