"""Training and validation of zoo networks: ``entrannas train`` / ``python -m entrannas_timm.train``
(settings and presets, the run, its command line), the run directory's files, and ``entrannas validate``.

May import :mod:`entrannas_timm.models`, :mod:`entrannas_timm.data` and :mod:`entrannas_timm.utils`.
"""
from .config import PRESETS, TrainConfig, resolve_config
from .trainer import NonFiniteError, TrainResult, run

__all__ = ['PRESETS', 'TrainConfig', 'resolve_config', 'NonFiniteError', 'TrainResult', 'run']
