"""Entry points of swift-app's commands (registered in the `swift.commands` group)."""

from swift_args.cli import run_command


def app(argv: list[str]) -> int:
    def main(invocation):  # gradio is imported only once the arguments are known to be good
        from swift_app.app import run_app

        return run_app(invocation)

    return run_command("app", argv, main)


def web_ui(argv: list[str]) -> int:
    def main(invocation):
        from swift_app.web_ui import run_web_ui

        return run_web_ui(invocation)

    return run_command("web-ui", argv, main)
