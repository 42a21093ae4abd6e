"""torch.hub entrypoints of the entrannas-timm model zoo, one per registered model.

``torch.hub.load('<checkout or owner/repo>', 'darts_v2_cifar10', genotype=..., pretrained=...)`` returns the
same network as ``timm.create_model``; every timm keyword (``num_classes``, ``in_chans``, ``channels``,
``layers``, ``drop_path_rate``, ``features_only``, ...) and ``genotype=`` (bundled name, file path, dict or
Genotype) passes through. The entrypoints are made from the registry (``entrannas_timm.models``), so a model
registered there is listed here; ``entrannas models`` prints their parameter counts and MACs.
"""
dependencies = ['torch', 'timm', 'huggingface_hub', 'safetensors']

# private names only: torch.hub lists every public callable of this module as an entrypoint
from typing import Callable as _Callable

import timm as _timm
import torch.nn as _nn

from entrannas_timm.models import MODEL_GENOTYPES as _MODEL_GENOTYPES
from entrannas_timm.models.registry import network_size as _network_size


def _describe(name: str, genotype: str, family: str) -> str:
    """The registered entrypoint's summary, then genotype, family and size as the registry defines them."""
    summary = (_timm.models.model_entrypoint(name).__doc__ or name).strip().splitlines()[0]
    size = _network_size(name)
    input_size = 'x'.join(str(s) for s in _timm.models.get_pretrained_cfg(name).input_size)
    return (f"{summary}\n\nGenotype ``{genotype}`` (any other with ``genotype=``); family ``{family}``: "
            f"{size['stem_type']} stem, {size['layers']} cells, {size['channels']} channels, {input_size} input.\n"
            f"Same as ``timm.create_model('{name}', pretrained=pretrained, **kwargs)``.")


def _entrypoint(name: str, genotype: str, family: str) -> _Callable[..., _nn.Module]:
    def entrypoint(pretrained: bool = False, **kwargs) -> _nn.Module:
        return _timm.create_model(name, pretrained=pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__doc__ = _describe(name, genotype, family)
    return entrypoint


globals().update({name: _entrypoint(name, *spec) for name, spec in _MODEL_GENOTYPES.items()})
