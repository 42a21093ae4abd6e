"""The Hugging Face Hub: the checkpoint layout (``config.json`` + ``model.safetensors`` + model card),
``entrannas export`` (a training run into that layout), ``entrannas publish`` and ``entrannas cache``.

May import every other subpackage except the command line; nothing below it imports the Hub layer.
"""
from .layout import model_args, model_card, push_to_hub, save_pretrained

__all__ = ['model_args', 'model_card', 'push_to_hub', 'save_pretrained']
