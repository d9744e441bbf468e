"""Every label the two pages show, in English and Chinese (--lang).

One table, so a test can prove that no label lacks its translation.
"""

from __future__ import annotations

LABELS: dict[str, tuple[str, str]] = {
    # key: (en, zh)
    # --- swift app ---------------------------------------------------------------------------------
    "chat": ("Chat", "对话"),
    "message": ("Message", "消息"),
    "message_placeholder": ("Type a message and press Enter", "输入消息后按回车"),
    "send": ("Send", "发送"),
    "stop": ("Stop", "停止"),
    "regenerate": ("Regenerate", "重新生成"),
    "clear": ("Clear", "清空"),
    "system": ("System prompt", "系统提示词"),
    "system_placeholder": ("Empty: the chat template's own default", "留空：使用对话模板的默认值"),
    "generation": ("Generation", "生成参数"),
    "temperature": ("Temperature (empty: the model's default; 0: greedy)", "温度（留空：模型默认；0：贪心）"),
    "top_p": ("Top p (empty: the model's default)", "Top p（留空：模型默认）"),
    "top_k": ("Top k (empty: the model's default)", "Top k（留空：模型默认）"),
    "max_new_tokens": ("Max new tokens (empty: up to the context)", "最大生成长度（留空：直到上下文上限）"),
    "repetition_penalty": ("Repetition penalty (empty: the model's default)", "重复惩罚（留空：模型默认）"),
    "multimodal_note": (
        "Images are sent as OpenAI image_url parts. Multimodal models are not supported by this release's local "
        "engine, which answers such a message with an error; a multimodal server (--base_url) can answer it.",
        "图片以 OpenAI image_url 形式发送。本版本的本地引擎尚不支持多模态模型，会对含图片的消息返回错误；"
        "多模态服务（--base_url）可以回答。"),
    "talking_to": ("Answers come from", "回答来自"),
    "error": ("Error", "错误"),
    # --- swift web-ui --------------------------------------------------------------------------------
    "web_ui_title": ("swift web-ui", "swift web-ui"),
    "command_preview": ("Command", "命令"),
    "start": ("Start", "开始"),
    "check": ("Check", "检查"),
    "checked": ("The command's arguments are valid.", "参数检查通过。"),
    "started": ("Started job", "已启动任务"),
    "jobs": ("Jobs", "任务"),
    "job": ("Job", "任务"),
    "refresh": ("Refresh", "刷新"),
    "stop_job": ("Stop job", "停止任务"),
    "log": ("Log (last lines)", "日志（末尾）"),
    "loss": ("Loss", "损失"),
    "learning_rate": ("Learning rate", "学习率"),
    "token_acc": ("Token accuracy", "Token 准确率"),
    "runs": ("Past runs", "历史运行"),
    "run": ("Run directory", "运行目录"),
    "run_arguments": ("Its args.json", "args.json 内容"),
    "checkpoint": ("Checkpoint", "检查点"),
    "send_to_infer": ("Chat with it (infer)", "对话（推理）"),
    "send_to_deploy": ("Deploy it", "部署"),
    "send_to_export": ("Export it", "导出"),
    "send_to_eval": ("Evaluate it", "评测"),
    "resume": ("Resume training from it", "从此处继续训练"),
    "chat_start": ("Load for chat", "加载并对话"),
    "chat_stop": ("Unload", "卸载"),
    "chat_loading": ("Loading the model (swift deploy)...", "正在加载模型（swift deploy）..."),
    "chat_ready": ("Ready: chatting with", "就绪：正在对话的模型"),
    "chat_not_loaded": ("Load a model first (the button above).", "请先加载模型（上方按钮）。"),
    "no_jobs": ("No jobs yet.", "暂无任务。"),
    "status": ("Status", "状态"),
}

# The web UI's group titles in Chinese (the English ones are `swift --help`'s, swift_args.help.GROUP_TITLES).
GROUP_TITLES_ZH: dict[str, str] = {
    "base": "基本参数", "model": "模型参数", "data": "数据参数", "template": "模板参数", "generation": "生成参数",
    "quantization": "量化参数", "trainer": "Trainer 参数（Seq2SeqTrainer）", "tuner": "微调方法参数",
    "full": "全参数训练参数", "lora": "LoRA 参数", "lora_ga": "LoRA-GA 参数", "fourierft": "FourierFt 参数",
    "boft": "BOFT 参数", "vera": "Vera 参数", "galore": "GaLore 参数", "lisa": "LISA 参数",
    "llamapro": "LLaMA-Pro 参数", "adalora": "AdaLoRA 参数", "reft": "ReFT 参数", "liger": "Liger 参数",
    "swanlab": "SwanLab 参数", "train": "训练参数", "rlhf": "RLHF 参数", "reward_model": "奖励模型参数",
    "ppo": "PPO 参数", "grpo": "GRPO 参数", "merge": "合并参数", "vllm": "vLLM 参数", "lmdeploy": "LMDeploy 参数",
    "infer": "推理参数", "deploy": "部署参数", "web_ui": "Web-UI 参数", "app": "App 参数", "eval": "评测参数",
    "export": "导出参数", "sampling": "采样参数", "mcts": "MCTS 参数",
}


def labels(lang: str) -> dict[str, str]:
    """The label table in one language: `en` or `zh`."""
    index = 1 if lang == "zh" else 0
    return {key: pair[index] for key, pair in LABELS.items()}
