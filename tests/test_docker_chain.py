"""The stage images chained through a volume: train in swift-train, serve in swift-infer, ask with openai.

Marked `docker` (left out of the default run, `pytest -m docker -s` runs it and prints build times and
sizes): it builds the two images on the local Debian base that ../shared/tools/docker-here.sh makes
(SWIFT_DOCKER_BASE names another), which downloads the locked wheels (about 6 GB) into each.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path

import pytest
from docker_images import DOCKER, LOCAL_BASE, build, docker, docker_answers, image_size
from swift_e2e import SELF_COGNITION, free_port, run_swift

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not docker_answers(), reason="no Docker daemon answers (docker info failed)"),
    pytest.mark.timeout(3600),
]
BASE = os.environ.get("SWIFT_DOCKER_BASE", LOCAL_BASE)
QUESTION = [{"role": "user", "content": "Who are you?"}]


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    if docker("image", "inspect", BASE, check=False).returncode != 0:
        pytest.skip(f"no {BASE} image: bash ../shared/tools/docker-here.sh builds it "
                    "(or set SWIFT_DOCKER_BASE)")
    tags = {}
    for stage in ("swift-train", "swift-infer"):
        tags[stage] = f"{stage}:test"
        seconds = build(DOCKER / stage / "Dockerfile", tags[stage], BASE)
        print(f"\n{stage}: built in {seconds:.0f} s on {BASE}, {image_size(tags[stage]) / 1e9:.2f} GB")
    return tags


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The volume the stages share: a host folder, so the test reads what the containers wrote."""
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o777)  # the images run as uid 1000, whoever runs the test
    return work


def run_in(image: str, work: Path, *args: str, detach: bool = False) -> str:
    mode = ["-d"] if detach else ["--rm"]
    ran = docker("run", *mode, "--network", "host", "-v", f"{work}:/work", image, *args, timeout=1800)
    return ran.stdout.strip()


def wait_healthy(container: str, url: str, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return
        except OSError:
            pass
        if docker("inspect", "--format", "{{.State.Running}}", container).stdout.strip() != "true":
            break
        time.sleep(1)
    log = docker("logs", container).stderr[-3000:]
    pytest.fail(f"swift deploy in {container} never answered {url}:\n{log}")


def test_a_checkpoint_trained_in_one_image_is_served_by_another(images: dict[str, str], work: Path,
                                                                 tmp_path: Path) -> None:
    import openai

    run_in(images["swift-train"], work, "sft", "--model", "SmolLM2-135M-Instruct", *SELF_COGNITION,
           "--learning_rate", "1e-3", "--per_device_train_batch_size", "4", "--max_steps", "6",
           "--save_steps", "6", "--split_dataset_ratio", "0", "--output_dir", "/work/output",
           "--add_version", "false")
    checkpoint = work / "output" / "checkpoint-6"
    assert (checkpoint / "adapter_model.safetensors").is_file()
    assert json.loads((work / "output" / "args.json").read_text())["max_steps"] == 6

    port = free_port()
    container = run_in(images["swift-infer"], work, "deploy", "--adapters", "/work/output/checkpoint-6",
                       "--port", str(port), "--temperature", "0", "--max_new_tokens", "24", detach=True)
    try:
        wait_healthy(container, f"http://127.0.0.1:{port}/health")
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none")
        served = client.models.list().data[0].id
        answer = client.chat.completions.create(model=served, messages=QUESTION).choices[0].message.content
        health = _health_status(container)
    finally:
        docker("rm", "-f", "-v", container, check=False)  # -v: and its anonymous /cache volume

    data = tmp_path / "question.jsonl"
    data.write_text(json.dumps({"messages": QUESTION}) + "\n")
    outside = run_swift("infer", "--adapters", str(checkpoint), "--val_dataset", str(data), "--result_path",
                        str(tmp_path / "answers.jsonl"), "--temperature", "0", "--max_new_tokens", "24",
                        CUDA_VISIBLE_DEVICES="")  # float32 on the CPU, as in the container
    assert outside.returncode == 0, outside.stderr[-2000:]
    assert answer and answer == json.loads((tmp_path / "answers.jsonl").read_text())["response"]
    # The image's HEALTHCHECK found the port in `swift deploy`'s own arguments.
    assert health == "healthy"


def _health_status(container: str, timeout: float = 90) -> str:
    deadline = time.time() + timeout
    status = ""
    while time.time() < deadline:
        status = docker("inspect", "--format", "{{.State.Health.Status}}", container).stdout.strip()
        if status != "starting":
            break
        time.sleep(2)
    return status
