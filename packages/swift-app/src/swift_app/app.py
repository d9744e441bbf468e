"""`swift app`: a chat page over a model.

Run as:
    swift app --model SmolLM2-135M-Instruct                       # its own local deployment
    swift app --adapters output/.../checkpoint-30                 # a training run's adapter
    swift app --base_url http://host:8000/v1 --api_key KEY        # any OpenAI-compatible server

Without --base_url the app starts `swift deploy` with the user's arguments as a child process (so
every deployment argument means what it means there), on loopback at a free port with a random key
unless --host / --port / --api_key say otherwise, and stops it when the page stops. The page talks
to either through the official OpenAI client, streaming each answer token by token.
"""

from __future__ import annotations

import sys
from typing import Any

from swift_args import ArgumentError, Invocation
from swift_infer.local_deployment import (
    LocalDeployment,
    deploy_argv,
    local_deployment,
    models_at,
    temporary_log,
)

from swift_app.chat import Endpoint, GenerationDefaults, chat_panel
from swift_app.labels import labels
from swift_app.launch import check_address, read_auth, serve

# What the page reads itself, and what each request carries: not passed to the local deployment.
APP_ONLY = {"base_url", "studio_title", "is_multimodal", "lang", "server_name", "server_port", "share", "auth"}
PER_REQUEST = {"temperature", "top_p", "top_k", "max_new_tokens", "repetition_penalty", "seed", "stop_words",
               "stream"}
SET_BY_APP = {"host", "port", "api_key"}
# A model loads in seconds to minutes; past this the deployment is taken for stuck and its log shown.
DEPLOY_TIMEOUT = 1800.0


def run_app(invocation: Invocation) -> int:
    args = invocation.args
    auth = read_auth(args.auth)
    check_address(args.server_name, args.server_port)
    deployment, endpoint, system = _remote(args) if args.base_url else _local(invocation)
    try:
        if deployment is not None:
            what = f"{' '.join(args.adapters)} on {args.model}" if args.adapters else args.model
            print(f"swift app: loading {what} (swift deploy, log: {deployment.log})", file=sys.stderr, flush=True)
            deployment.start(DEPLOY_TIMEOUT, timeout_argument=None)
        page = build_page(endpoint, args, invocation.passed, system, deployment)
        serve(page, args, auth, "app")
    finally:
        if deployment is not None:
            deployment.stop()
    return 0


def _remote(args: Any) -> tuple[None, Endpoint, str | None]:
    """--base_url: ask the server for its models; --model names one of them (default: the first)."""
    url = args.base_url.rstrip("/")
    served = models_at(url, args.api_key, "--base_url")
    name = str(args.model) if args.model is not None else (served[0] if served else None)
    if name is None:
        raise ArgumentError(f"--base_url {url} lists no model; pass --model with the name to request")
    if served and name not in served:
        raise ArgumentError(f"--model {name}: {url} serves {', '.join(served)}; pass one of them")
    from swift_data.templates.encode import read_system

    return None, Endpoint(url, args.api_key or "EMPTY", name), read_system(args.system)


def _local(invocation: Invocation) -> tuple[LocalDeployment, Endpoint, str | None]:
    """The deployment the page talks to, its arguments checked as `swift deploy` checks them, before it starts."""
    from swift_data.templates.encode import read_system

    args, passed = invocation.args, invocation.passed
    deployment, deploy_args = local_deployment(deploy_argv(invocation.argv, "app", APP_ONLY | PER_REQUEST | SET_BY_APP),
                                               args.host if "host" in passed else None,
                                               args.port if "port" in passed else None, args.api_key,
                                               temporary_log("swift-app-deploy-"))
    endpoint = Endpoint(deployment.url, deployment.api_key, deploy_args.served_model_name)
    # The page's starting system prompt: --system, else the one the checkpoint's args.json recorded.
    return deployment, endpoint, read_system(deploy_args.system)


def build_page(endpoint: Endpoint, args: Any, typed: set[str], system: str | None,
               deployment: LocalDeployment | None = None) -> Any:
    """The gradio page: a title, the chat panel, and where its answers come from."""
    import gradio as gr

    text = labels(args.lang)
    title = args.studio_title or endpoint.model
    multimodal = bool(args.is_multimodal)  # None: every model this release loads is text-only
    with gr.Blocks(title=title, analytics_enabled=False) as page:
        gr.Markdown(f"# {title}", elem_id="title")
        gr.Markdown(f"{text['talking_to']}: `{endpoint.model}` @ `{endpoint.url}`", elem_id="endpoint")

        def current() -> Endpoint:
            if deployment is not None:
                deployment.check("while the app runs")
            return endpoint

        chat_panel(current, GenerationDefaults.from_args(args, typed), system, args.lang, multimodal)
    return page
