"""`swift web-ui`: a console in the browser that builds, checks, starts, follows and stops swift commands.

Run as:
    swift web-ui                      # http://127.0.0.1:7860, jobs and runs under ./output
    swift web-ui --server_name 0.0.0.0 --auth @~/.swift-web-ui-login

Each command's tab is its argument dataclass as a form (swift_app.forms); Start checks the command with
the CLI's own parser, then hands it to the job store (swift_app.jobs), whose files are the only state:
the Jobs tab reads them every two seconds, so a reload or a restart of the web UI loses nothing. The
Runs tab reads run directories (swift_app.runs) and sends a checkpoint to the infer, deploy, export or
eval tab, or back to training to resume. The infer tab also chats with the model it names, through a
`swift deploy` child of the web UI.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from swift_args import ArgumentError, Invocation, parse_args
from swift_args.commands import COMMANDS
from swift_args.model_names import model_suffix

from swift_app import runs
from swift_app.chat import Endpoint, GenerationDefaults, chat_panel
from swift_app.forms import CommandForm, build_form
from swift_app.jobs import JobStore
from swift_app.labels import labels
from swift_app.launch import check_address, read_auth, serve

TABS = ("sft", "pt", "rlhf", "infer", "deploy", "sample", "export", "eval")
TRAINING = ("sft", "pt", "rlhf")
# A tab's one-line note on what it cannot do yet.
NOTES = {"rlhf": "PPO and GRPO (online RL) are not available yet; DPO, ORPO, SimPO, CPO, KTO and reward models are."}
REFRESH_SECONDS = 2.0
# Seconds a model may take to load for the infer tab's chat before its deployment is taken for stuck.
CHAT_LOAD_TIMEOUT = 1800.0


def run_web_ui(invocation: Invocation) -> int:
    args = invocation.args
    auth = read_auth(args.auth)
    check_address(args.server_name, args.server_port)
    store = JobStore(args.output_dir)
    chat = ChatDeployment()
    try:
        serve(build_page(args, store, chat), args, auth, "web-ui")
    finally:
        chat.stop()
    return 0


class ChatDeployment:
    """The infer tab's `swift deploy` child: one at a time, replaced when another model is loaded.

    Loading and unloading run on one thread of their own, in turn: gradio's worker threads retire when idle,
    and a child started from one would be ended with it (PR_SET_PDEATHSIG follows the starting thread)."""

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.deployment: Any = None
        self.endpoint: Endpoint | None = None
        self.system: str | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="swift-web-ui-chat")

    def load(self, argv: list[str]) -> Endpoint:
        return self._thread.submit(self._load, argv).result()

    def _load(self, argv: list[str]) -> Endpoint:
        from swift_data.templates.encode import read_system
        from swift_infer.local_deployment import local_deployment, temporary_log

        deployment, deploy_args = local_deployment(argv, None, None, None, temporary_log("swift-web-ui-chat-"))
        self._stop()
        deployment.start(CHAT_LOAD_TIMEOUT, timeout_argument=None)
        self.deployment = deployment
        self.endpoint = Endpoint(deployment.url, deployment.api_key, deploy_args.served_model_name)
        self.system = read_system(deploy_args.system)  # --system, or the checkpoint's args.json's
        return self.endpoint

    def current(self) -> Endpoint | None:
        if self.deployment is not None:
            self.deployment.check("while chatting")
        return self.endpoint

    def stop(self) -> None:
        self._thread.submit(self._stop).result()

    def _stop(self) -> None:
        if self.deployment is not None:
            self.deployment.stop()
        self.deployment, self.endpoint, self.system = None, None, None


def command_argv(form: CommandForm, values: list[Any], output_dir: str) -> list[str]:
    """The form's arguments; a training run with no --output_dir of its own writes below the web UI's."""
    argv = form.argv(values)
    if form.command in TRAINING and "--output_dir" not in argv:
        model = values[form.widgets.index(form.widget("model"))]
        if model:
            argv += ["--output_dir", str(Path(output_dir) / model_suffix(str(model)))]
    return argv


def check_command(command: str, argv: list[str]) -> list[str]:
    """The CLI's own verdict on the command: [] when it would start, else one line per problem."""
    if command == "infer" and not any(a in argv for a in ("--val_dataset", "--dataset")):
        return ["swift infer without --val_dataset chats at a terminal; here, use the chat below (Load for chat), or "
                "give --val_dataset to run it over a dataset"]
    try:
        parse_args(command, argv, warn=lambda message: None)
    except ArgumentError as exc:
        return list(exc.problems)
    return []


def build_page(args: Any, store: JobStore, chat: ChatDeployment) -> Any:
    import gradio as gr

    text = labels(args.lang)
    forms: dict[str, CommandForm] = {}
    with gr.Blocks(title=text["web_ui_title"], analytics_enabled=False) as page:
        gr.Markdown(f"# {text['web_ui_title']}", elem_id="title")
        with gr.Tabs(elem_id="tabs") as tabs:
            starts = []
            for command in TABS:
                with gr.Tab(command, id=command, elem_id=f"tab-{command}"):
                    forms[command], start, started_job = command_tab(command, args, store, text)
                    starts.append((start, started_job))
                    if command == "infer":
                        chat_tab_part(forms["infer"], chat, args, text)
            with gr.Tab(text["jobs"], id="jobs", elem_id="tab-jobs"):
                job_select = jobs_tab(page, store, text)
            with gr.Tab(text["runs"], id="runs", elem_id="tab-runs"):
                runs_tab(page, args, forms, tabs, text)
        def open_job(job_id: str | None) -> tuple:
            if job_id is None:  # refused: the form and its errors stay in view
                return gr.skip(), gr.skip()
            return gr.Tabs(selected="jobs"), _job_choices(store, job_id)

        for start, started_job in starts:  # a started job opens the Jobs tab, selected
            start.then(open_job, started_job, [tabs, job_select])
    return page


def command_tab(command: str, args: Any, store: JobStore, text: dict[str, str]) -> tuple[CommandForm, Any, Any]:
    import gradio as gr

    gr.Markdown(COMMANDS[command].summary + (f" {NOTES[command]}" if command in NOTES else ""),
                elem_id=f"{command}-summary")
    form = build_form(command, args.lang)

    def line(*values: Any) -> str:
        return shlex.join(["swift", command, *command_argv(form, list(values), args.output_dir)])

    preview = gr.Code(line(*(widget.initial for widget in form.widgets)), language="shell",
                      label=text["command_preview"], interactive=False, elem_id=f"{command}-command", lines=2)
    with gr.Row():
        check = gr.Button(text["check"], elem_id=f"{command}-check")
        start = gr.Button(text["start"], variant="primary", elem_id=f"{command}-start")
    message = gr.Markdown(elem_id=f"{command}-message")
    started_job = gr.State(None)

    def verdict(*values: Any) -> str:
        problems = check_command(command, command_argv(form, list(values), args.output_dir))
        return _problems(command, problems) if problems else f"✅ {text['checked']}"

    def begin(*values: Any) -> tuple[str, str | None]:
        argv = command_argv(form, list(values), args.output_dir)
        problems = check_command(command, argv)
        if problems:
            return _problems(command, problems), None  # shown under the form; nothing starts
        job = store.start(command, argv)
        return f"{text['started']} `{job.id}`", job.id

    gr.on([component.change for component in form.components], line, form.components, preview, queue=False,
          show_progress="hidden")
    check.click(verdict, form.components, message)
    return form, start.click(begin, form.components, [message, started_job]), started_job


def _problems(command: str, problems: list[str]) -> str:
    return "\n".join(f"❌ swift {command}: error: {problem}" for problem in problems)


def chat_tab_part(form: CommandForm, chat: ChatDeployment, args: Any, text: dict[str, str]) -> None:
    """The infer tab's chat: the form's model and adapters, deployed for the page."""
    import gradio as gr

    with gr.Row():
        load = gr.Button(text["chat_start"], elem_id="infer-chat-load")
        unload = gr.Button(text["chat_stop"], elem_id="infer-chat-unload")
    status = gr.Markdown(elem_id="infer-chat-status")
    panel = chat_panel(chat.current, GenerationDefaults(), None, args.lang)

    def load_model(*values: Any) -> Any:
        yield text["chat_loading"], gr.skip(), gr.skip()
        try:
            endpoint = chat.load(form.argv(list(values)))
        except ArgumentError as exc:
            yield _problems("infer", list(exc.problems)), gr.skip(), gr.skip()
            return
        except Exception as exc:  # the deployment exited or never answered: its last lines say why
            yield f"❌ {exc}", gr.skip(), gr.skip()
            return
        yield f"{text['chat_ready']} `{endpoint.model}`", chat.system or "", []  # a new model: a new conversation

    load.click(load_model, form.components, [status, panel.system, panel.chatbot])
    unload.click(lambda: (chat.stop(), "")[1], None, status)


def _job_choices(store: JobStore, selected: str | None = None) -> Any:
    import gradio as gr

    jobs = store.jobs()
    choices = [job.id for job in jobs]  # (no status in the name: the status line below it is kept current)
    if selected is None and jobs:
        running = [job for job in jobs if store.status(job) == "running"]
        selected = (running or jobs)[0].id
    return gr.Dropdown(choices=choices, value=selected)


def jobs_tab(page: Any, store: JobStore, text: dict[str, str]) -> Any:
    import gradio as gr

    with gr.Row():
        job_select = gr.Dropdown(label=text["job"], choices=[], elem_id="job-select", scale=4)
        refresh = gr.Button(text["refresh"], elem_id="job-refresh", scale=1)
        stop = gr.Button(text["stop_job"], variant="stop", elem_id="job-stop", scale=1)
    status = gr.Markdown(elem_id="job-status")
    command_line = gr.Code(language="shell", label=text["command_preview"], interactive=False, elem_id="job-command")
    log = gr.Textbox(label=text["log"], lines=16, max_lines=16, interactive=False, autoscroll=True, elem_id="job-log")
    plots = curve_plots(text, "job")

    def show(job_id: str | None) -> tuple:
        if not job_id:
            return (text["no_jobs"], "", "", *_curves(None))
        try:
            job = store.load(job_id)
        except (OSError, ValueError):
            return (text["no_jobs"], "", "", *_curves(None))
        run_dir = store.run_dir(job)
        where = f" · {text['run']}: `{run_dir}`" if run_dir else ""
        return (f"**{text['status']}: {store.status(job)}**{where}", job.command_line, store.tail(job.id),
                *_curves(run_dir))

    def stop_job(job_id: str | None) -> Any:
        if job_id:
            store.stop(job_id)
        return _job_choices(store, job_id)

    outputs = [status, command_line, log, *plots]
    page.load(lambda: _job_choices(store), None, job_select)
    job_select.change(show, job_select, outputs)
    refresh.click(lambda job_id: _job_choices(store, job_id), job_select, job_select)
    stop.click(stop_job, job_select, job_select).then(show, job_select, outputs)
    gr.Timer(REFRESH_SECONDS).tick(show, job_select, outputs, show_progress="hidden")
    return job_select


def curve_plots(text: dict[str, str], prefix: str) -> list[Any]:
    import gradio as gr

    with gr.Row():
        return [gr.LinePlot(x="step", y=name, title=text[name], elem_id=f"{prefix}-plot-{name}", height=240)
                for name in runs.CURVES]


def _curves(run_dir: Path | None) -> list[Any]:
    return runs.curve_frames(run_dir)


def runs_tab(page: Any, args: Any, forms: dict[str, CommandForm], tabs: Any, text: dict[str, str]) -> None:
    import gradio as gr

    with gr.Row():
        run_select = gr.Dropdown(label=text["run"], choices=[], elem_id="run-select", scale=4)
        refresh = gr.Button(text["refresh"], elem_id="run-refresh", scale=1)
    plots = curve_plots(text, "run")
    checkpoint = gr.Dropdown(label=text["checkpoint"], choices=[], elem_id="checkpoint-select")
    with gr.Row():
        to_infer = gr.Button(text["send_to_infer"], elem_id="run-to-infer")
        to_deploy = gr.Button(text["send_to_deploy"], elem_id="run-to-deploy")
        to_export = gr.Button(text["send_to_export"], elem_id="run-to-export")
        to_eval = gr.Button(text["send_to_eval"], elem_id="run-to-eval")
        resume = gr.Button(text["resume"], elem_id="run-resume")
    arguments = gr.Code(language="json", label=text["run_arguments"], interactive=False, elem_id="run-arguments")

    def run_choices(selected: str | None = None) -> Any:
        found = [str(run) for run in runs.find_runs(args.output_dir)]
        return gr.Dropdown(choices=found, value=selected if selected in found else (found[0] if found else None))

    def show(run: str | None) -> tuple:
        if not run:
            return ("", gr.Dropdown(choices=[], value=None), *_curves(None))
        run_dir = Path(run)
        points = [str(path) for path in runs.checkpoints(run_dir)]
        return (json.dumps(runs.read_arguments(run_dir), indent=1, ensure_ascii=False),
                gr.Dropdown(choices=points, value=points[0] if points else None), *_curves(run_dir))

    page.load(run_choices, None, run_select)
    refresh.click(run_choices, run_select, run_select)
    run_select.change(show, run_select, [arguments, checkpoint, *plots])
    for button, command in ((to_infer, "infer"), (to_deploy, "deploy"), (to_export, "export"), (to_eval, "eval")):
        form = forms[command]
        targets = [form.widget("model").component, form.widget("adapters").component]
        button.click(_sender(command), checkpoint, [*targets, tabs])
    training = [component for command in TRAINING for component in forms[command].components]
    resume.click(_resumer(forms), [run_select, checkpoint], [*training, tabs])


def _sender(command: str) -> Any:
    """Put a checkpoint in a tab's --model (full weights) or --adapters (a tuner's), and open that tab."""
    import gradio as gr

    def send(checkpoint: str | None) -> tuple:
        if not checkpoint:
            raise gr.Error("choose a run with a checkpoint first", print_exception=False)
        if runs.is_adapter(Path(checkpoint)):
            return "", shlex.quote(checkpoint), gr.Tabs(selected=command)
        return checkpoint, "", gr.Tabs(selected=command)

    return send


def _resumer(forms: dict[str, CommandForm]) -> Any:
    """Fill the run's training tab with its args.json and --resume_from_checkpoint, and open it."""
    import gradio as gr

    def resume(run: str | None, checkpoint: str | None) -> list:
        if not run or not checkpoint:
            raise gr.Error("choose a run with a checkpoint first", print_exception=False)
        arguments = runs.read_arguments(Path(run))
        command = arguments.get("command") if arguments.get("command") in TRAINING else "sft"
        updates: list = []
        for name in TRAINING:
            form = forms[name]
            if name == command:
                updates += form.filled({**_typed_like(form, arguments), "resume_from_checkpoint": checkpoint})
            else:
                updates += [gr.skip()] * len(form.widgets)
        return [*updates, gr.Tabs(selected=command)]

    return resume


def _typed_like(form: CommandForm, arguments: dict[str, Any]) -> dict[str, Any]:
    """The args.json values a person would have typed to get that run: those differing from the field's default,
    less those the command derives by itself from the others (a None learning rate's value for the train type,
    the SwanLab name from --output_dir), which typed would mean something else or be refused."""
    from swift_args.resolve import build_args

    arguments = _as_typed_before_the_run(arguments)
    typed = {widget.spec.name: arguments[widget.spec.name] for widget in form.widgets
             if widget.spec.name in arguments and arguments[widget.spec.name] != widget.spec.default}
    for name in list(typed):
        others = {key: value for key, value in typed.items() if key != name}
        try:
            derived = getattr(build_args(form.command, others, passed=set(others)), name)
        except (ArgumentError, TypeError, ValueError):
            continue  # needed: without it the command is not complete
        if derived == typed[name]:
            del typed[name]
    return typed


def _as_typed_before_the_run(arguments: dict[str, Any]) -> dict[str, Any]:
    """args.json as the command saw it before its run directory existed: the run records that directory as
    --output_dir (its parent was the one given, vN-<time> added) and the tensorboard directory inside it."""
    import re

    arguments = dict(arguments)
    run_dir = Path(str(arguments.get("output_dir") or ""))
    if arguments.get("add_version", True) and re.fullmatch(r"v\d+-\d{8}-\d{6}", run_dir.name):
        arguments["output_dir"] = str(run_dir.parent)
    if arguments.get("logging_dir") == str(run_dir / "runs"):
        arguments["logging_dir"] = None
    return arguments
