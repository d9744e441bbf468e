"""swift-data: datasets, chat templates, tokenization, loss masks, packing; finding model files.

The public entry points: `prepare_datasets` (the whole data path for a command's arguments),
`Encoder` (one conversation -> training tensors), `Collator` (batches), `resolve_model_dir`.
"""

from swift_data.collator import Collator
from swift_data.models import detect_model_info, resolve_model_dir
from swift_data.pipeline import PreparedData, prepare_datasets
from swift_data.preprocess.conversation import Conversation
from swift_data.templates.encode import Encoder, EncoderOptions

__all__ = [
    "Collator",
    "Conversation",
    "Encoder",
    "EncoderOptions",
    "PreparedData",
    "detect_model_info",
    "prepare_datasets",
    "resolve_model_dir",
]
