"""swift-train: swift sft, swift pt, swift rlhf: trainers, tuners and distributed launch."""
