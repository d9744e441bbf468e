"""The pages as gradio builds them: every label in the chosen language, the app's defaults from its arguments."""

from __future__ import annotations

import json

import pytest
from swift_app.app import build_page
from swift_app.chat import Endpoint, GenerationDefaults, openai_messages, request_options
from swift_app.labels import LABELS, labels
from swift_args import parse_args


def test_every_label_has_both_languages() -> None:
    assert all(en.strip() and zh.strip() for en, zh in LABELS.values())


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_app_page_speaks_its_language(lang: str) -> None:
    args = parse_args("app", ["--model", "org/My-Model", "--lang", lang, "--temperature", "0.3"]).args
    page = build_page(Endpoint("http://127.0.0.1:1/v1", "k", "My-Model"), args, {"temperature"}, "Be brief.")
    config = json.dumps(page.get_config_file(), ensure_ascii=False)
    other = "zh" if lang == "en" else "en"
    for key in ("send", "stop", "regenerate", "clear", "system", "temperature"):
        assert labels(lang)[key] in config
        if labels(other)[key] != labels(lang)[key]:
            assert labels(other)[key] not in config
    assert "My-Model" in config and "Be brief." in config and '"0.3"' in config


def test_studio_title_names_the_page() -> None:
    args = parse_args("app", ["--model", "m", "--studio_title", "Support bot"]).args
    page = build_page(Endpoint("http://127.0.0.1:1/v1", "k", "m"), args, set(), None)
    assert page.title == "Support bot"


def test_requests_carry_only_what_the_user_set() -> None:
    defaults = GenerationDefaults(stop_words=["END"])
    assert request_options(defaults, "", "", "", "", "") == {"stop": ["END"]}
    options = request_options(GenerationDefaults(seed=7), "0.5", "0.9", "20", "64", "1.1")
    assert options == {"temperature": 0.5, "top_p": 0.9, "max_tokens": 64, "seed": 7,
                       "extra_body": {"top_k": 20, "repetition_penalty": 1.1}}
    with pytest.raises(ValueError, match="top_k must be a whole number"):
        request_options(defaults, "", "", "2.5", "", "")


def test_the_conversation_is_sent_whole_with_the_system_prompt(tmp_path) -> None:
    image = tmp_path / "cat.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n")
    history = [{"role": "user", "content": [{"type": "text", "text": "Hi"}]},
               {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
               {"role": "user", "content": [{"type": "file", "file": {"path": str(image)}},
                                            {"type": "text", "text": "What is this?"}]}]
    messages = openai_messages("Be brief.", history)
    assert messages[:3] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                            {"role": "assistant", "content": "Hello!"}]
    image_part, text_part = messages[3]["content"]
    assert image_part["image_url"]["url"].startswith("data:image/png;base64,") and text_part["text"] == "What is this?"
    assert openai_messages("  ", history[:1]) == [{"role": "user", "content": "Hi"}]
    error = {"role": "assistant", "content": [{"type": "text", "text": "400: too long"}],
             "metadata": {"title": "Error", "status": "done"}}
    assert openai_messages("", [*history[:1], error]) == [{"role": "user", "content": "Hi"}]  # the page's, not the model's


def test_a_multimodal_page_takes_images_and_says_what_answers_them() -> None:
    args = parse_args("app", ["--model", "m", "--is_multimodal", "true"]).args
    config = json.dumps(build_page(Endpoint("http://127.0.0.1:1/v1", "k", "m"), args, set(), None).get_config_file())
    assert labels("en")["multimodal_note"] in config and '"multimodaltextbox"' in config
    text_only = parse_args("app", ["--model", "m"]).args
    config = json.dumps(build_page(Endpoint("http://127.0.0.1:1/v1", "k", "m"), text_only, set(), None).get_config_file())
    assert '"multimodaltextbox"' not in config


def test_every_argument_group_has_a_chinese_title() -> None:
    from swift_app.labels import GROUP_TITLES_ZH
    from swift_args.help import GROUP_TITLES

    assert set(GROUP_TITLES_ZH) == set(GROUP_TITLES)
