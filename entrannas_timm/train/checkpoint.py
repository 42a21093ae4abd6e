"""A training run directory: its files, how they are written, and how they are read back safely.

``entrannas train --output RUN`` writes::

    RUN/config.json          settings, the model (registered entrypoint + its arguments, genotype included) and
                             the data (input size, mean, std, crop) -- enough to rebuild the network anywhere
    RUN/metrics.jsonl        one JSON line per epoch
    RUN/best.safetensors     inference weights (no auxiliary head) of the epoch with the best validation top-1
    RUN/last.safetensors     inference weights of the last finished epoch
    RUN/best_ema.safetensors, RUN/last_ema.safetensors      the same for the EMA weights (``--ema``)
    RUN/checkpoint.pt        everything a resume needs (weights with the auxiliary head, optimizer, scheduler,
                             EMA, metrics); plain tensors and numbers, loadable with ``weights_only=True``

Every file is written atomically (:func:`~entrannas_timm.utils.files.write_atomic`) and only after every tensor and
metric in it was checked finite, so a crash or a diverged run never leaves a damaged or poisoned file behind.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch
import torch.nn as nn

from ..utils.errors import CLIError
from ..utils.files import write_atomic

__all__ = [
    'CONFIG', 'METRICS', 'CHECKPOINT', 'WEIGHTS', 'CHECKPOINT_FORMAT', 'CHECKPOINT_VERSION', 'inference_state',
    'save_weights', 'load_weights', 'load_into', 'save_checkpoint', 'read_checkpoint', 'load_checkpoint',
    'read_config',
    'read_run',
    'run_weights', 'build_run_model', 'is_run_dir',
]

CONFIG, METRICS, CHECKPOINT = 'config.json', 'metrics.jsonl', 'checkpoint.pt'
WEIGHTS = {('best', False): 'best.safetensors', ('last', False): 'last.safetensors',
           ('best', True): 'best_ema.safetensors', ('last', True): 'last_ema.safetensors'}
"""Weight files by (which epoch, EMA or not)."""

CHECKPOINT_FORMAT = 'entrannas-train-checkpoint'
CHECKPOINT_VERSION = 1
MAX_CONFIG_BYTES = 1 << 20  # a run's config.json is a few kB; refuse to parse anything huge


def inference_state(model: nn.Module) -> Dict[str, torch.Tensor]:
    """The weights a user loads: the state dict without the training-only auxiliary head, on the CPU."""
    return {k: v.detach().to('cpu').contiguous() for k, v in model.state_dict().items()
            if not k.startswith('aux_head.')}



def save_weights(path: Union[str, Path], state: Mapping[str, torch.Tensor],
                 metadata: Optional[Mapping[str, str]] = None) -> Path:
    """Write ``state`` as safetensors, atomically."""
    from safetensors.torch import save
    return write_atomic(path, save(dict(state), metadata=dict(metadata) if metadata else None))


def load_weights(path: Union[str, Path]) -> Dict[str, torch.Tensor]:
    """Read a safetensors file; a missing, corrupt or truncated file is a :class:`CLIError` naming it."""
    from safetensors.torch import load_file
    path = Path(path)
    if not path.is_file():
        raise CLIError(f'{path}: weights file not found')
    try:
        return load_file(str(path), device='cpu')
    except Exception as e:  # safetensors raises its own error type, OSError, or ValueError for broken files
        raise CLIError(f'{path}: not a readable safetensors file (corrupt or truncated?): {e}') from None


def load_into(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model`` strictly; a mismatch says which keys and shapes differ."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f'{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}' for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append(f'{len(shapes)} shape mismatch(es), e.g. {shapes[0]}')
        if missing:
            parts.append(f'{len(missing)} missing key(s), e.g. {missing[0]}')
        if unexpected:
            parts.append(f'{len(unexpected)} unexpected key(s), e.g. {unexpected[0]}')
        raise CLIError(f'{source}: these weights do not fit the model ({"; ".join(parts)}): a checkpoint of another '
                       'architecture, size or class count?')
    model.load_state_dict(dict(state), strict=True)


def save_checkpoint(path: Union[str, Path], state: Dict[str, Any]) -> Path:
    """Write the resume checkpoint (plain tensors, numbers, strings: readable with ``weights_only=True``)."""
    state = dict(state, format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION)
    return write_atomic(path, lambda f: torch.save(state, f))


def read_checkpoint(path: Union[str, Path], fmt: str, version: int, kind: str) -> Dict[str, Any]:
    """A resume checkpoint of format ``fmt`` and ``version``, read with ``weights_only=True``; any other file is a
    ``ValueError`` naming ``path`` and, for a foreign format, ``kind`` (what the caller expected to find)."""
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # truncated zip, a pickle of arbitrary objects, ...: none is a usable checkpoint
        raise ValueError(f'{path} is not a readable checkpoint ({type(e).__name__}: {e})') from None
    if not isinstance(ckpt, dict) or ckpt.get('format') != fmt:
        raise ValueError(f'{path} is not {kind} (expected format {fmt!r})')
    if ckpt.get('version') != version:
        raise ValueError(f'{path} has checkpoint version {ckpt.get("version")!r}; this code reads {version}')
    return ckpt


def load_checkpoint(path: Union[str, Path]) -> Dict[str, Any]:
    """Read a resume checkpoint with ``weights_only=True``; anything else is a :class:`CLIError`."""
    path = Path(path)
    if not path.is_file():
        raise CLIError(f'--resume: no checkpoint at {path} (a run directory written by entrannas train holds '
                       f'{CHECKPOINT})')
    try:
        return read_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, 'an entrannas train checkpoint')
    except ValueError as e:
        raise CLIError(f'--resume: {e}') from None


# ---- reading a run back ----------------------------------------------------------------------------------------
def is_run_dir(path: Union[str, Path]) -> bool:
    p = Path(path)
    return p.is_dir() and (p / CONFIG).is_file() and any((p / w).is_file() for w in WEIGHTS.values())


def read_config(path: Union[str, Path]) -> Any:
    """A configuration file (JSON, at most :data:`MAX_CONFIG_BYTES`); anything else is a :class:`CLIError`."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise CLIError(f'{path}: {size} bytes is too large for a configuration file')
    try:
        return json.loads(path.read_text(encoding='utf-8'))
    except (ValueError, UnicodeDecodeError) as e:
        raise CLIError(f'{path}: malformed JSON ({e})') from None


def read_run(run_dir: Union[str, Path]) -> Dict[str, Any]:
    """A run's ``config.json``, checked to hold what rebuilding its model needs."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise CLIError(f'{run_dir}: not a training run directory (no {CONFIG})')
    cfg = read_config(path)
    model = cfg.get('model') if isinstance(cfg, dict) else None
    data = cfg.get('data') if isinstance(cfg, dict) else None
    if not (isinstance(model, dict) and isinstance(model.get('name'), str) and isinstance(model.get('args'), dict)
            and isinstance(data, dict)):
        raise CLIError(f'{path}: not the configuration of an entrannas train run (expected "model" with "name" and '
                       '"args", and "data")')
    return cfg


def run_weights(run_dir: Union[str, Path], which: str = 'best', ema: bool = False) -> Path:
    """The weight file of ``which`` epoch ('best' or 'last'), EMA or not; a clear error if the run lacks it."""
    path = Path(run_dir) / WEIGHTS[(which, ema)]
    if not path.is_file():
        hint = ' (the run was trained without --ema)' if ema else ' (has an epoch finished?)'
        raise CLIError(f'{path}: not found{hint}')
    return path


def build_run_model(run_dir: Union[str, Path], which: str = 'best', ema: bool = False) -> Tuple[nn.Module, Dict]:
    """The inference network of a run, with the weights of ``which`` epoch, in eval mode; and the run's config."""
    import timm
    cfg = read_run(run_dir)
    weights = run_weights(run_dir, which, ema)
    try:
        model = timm.create_model(cfg['model']['name'], **cfg['model']['args'])
    except Exception as e:  # a hand-edited or foreign config: say where it came from
        raise CLIError(f'{Path(run_dir) / CONFIG}: cannot build its model ({type(e).__name__}: {e})') from None
    load_into(model, load_weights(weights), str(weights))
    return model.eval(), cfg

