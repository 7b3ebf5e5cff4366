"""Processor classes that load without torchvision.

The stock processors of Qwen2-VL, Qwen2.5-VL, Qwen3-VL, InternVL and SmolVLM require a video
processor, which needs torchvision (not installable next to torch 2.13+cpu). These subclasses omit
it; :func:`register_processors` registers them with ``AutoProcessor`` so processor folders, tiny and
real, load without torchvision. Extra ``__init__`` arguments must be in the signature: processors
serialise exactly those.
"""

from __future__ import annotations

import transformers as tf
from transformers.processing_utils import ProcessorMixin


def _no_video(base: type[ProcessorMixin], name: str) -> type[ProcessorMixin]:
    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):  # noqa: N807
        base.__init__(self, image_processor, tokenizer, chat_template=chat_template, **kwargs)

    return type(name, (base,), {"__init__": __init__, "__module__": __name__})


Qwen2VLProcessorNoVideo = _no_video(tf.Qwen2VLProcessor, "Qwen2VLProcessorNoVideo")
Qwen2_5_VLProcessorNoVideo = _no_video(tf.Qwen2_5_VLProcessor, "Qwen2_5_VLProcessorNoVideo")
Qwen3VLProcessorNoVideo = _no_video(tf.Qwen3VLProcessor, "Qwen3VLProcessorNoVideo")


def _internvl_init(
    self, image_processor=None, tokenizer=None, image_seq_length=256, chat_template=None, **kwargs
):
    tf.InternVLProcessor.__init__(
        self,
        image_processor,
        tokenizer,
        None,
        image_seq_length=image_seq_length,
        chat_template=chat_template,
        **kwargs,
    )


# Extra __init__ arguments must be in the signature: processors serialise exactly those.
InternVLProcessorNoVideo = type(
    "InternVLProcessorNoVideo",
    (tf.InternVLProcessor,),
    {"__init__": _internvl_init, "__module__": __name__},
)


def _smolvlm_init(
    self, image_processor=None, tokenizer=None, image_seq_len=169, chat_template=None, **kwargs
):
    tf.SmolVLMProcessor.__init__(
        self,
        image_processor,
        tokenizer,
        None,
        image_seq_len=image_seq_len,
        chat_template=chat_template,
        **kwargs,
    )


SmolVLMProcessorNoVideo = type(
    "SmolVLMProcessorNoVideo",
    (tf.SmolVLMProcessor,),
    {
        "__init__": _smolvlm_init,
        "__module__": __name__,
        # SmolVLM's own apply_chat_template reaches for the video processor.
        "apply_chat_template": ProcessorMixin.apply_chat_template,
    },
)

_NO_VIDEO = {
    tf.Qwen2VLConfig: Qwen2VLProcessorNoVideo,
    tf.Qwen2_5_VLConfig: Qwen2_5_VLProcessorNoVideo,
    tf.Qwen3VLConfig: Qwen3VLProcessorNoVideo,
    tf.InternVLConfig: InternVLProcessorNoVideo,
    tf.SmolVLMConfig: SmolVLMProcessorNoVideo,
}


def register_processors() -> None:
    """Make ``AutoProcessor`` use the video-free subclasses (idempotent)."""
    for config_class, processor_class in _NO_VIDEO.items():
        tf.AutoProcessor.register(config_class, processor_class, exist_ok=True)


register_processors()
