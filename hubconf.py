"""torch.hub entrypoints of the entrannas-timm model zoo.

``torch.hub.load('<checkout or owner/repo>', 'darts_v2_cifar10', genotype=..., pretrained=...)`` returns the
same network as ``timm.create_model``; every timm keyword (``num_classes``, ``in_chans``, ``channels``,
``layers``, ``drop_path_rate``, ``features_only``, ...) and ``genotype=`` (bundled name, file path, dict or
Genotype) passes through.
"""
dependencies = ['torch', 'timm', 'huggingface_hub', 'safetensors']

import timm
import torch.nn as nn

import entrannas_timm  # noqa: F401  (registers the zoo with timm)


def cellnet_cifar(pretrained: bool = False, **kwargs) -> nn.Module:
    """Any genotype (``genotype=``) as a CIFAR family network: 20 cells, 36 channels, 32x32 input.

    Without ``genotype=`` it builds ``darts_v2`` (3,349,342 params).
    """
    return timm.create_model('cellnet_cifar', pretrained=pretrained, **kwargs)


def cellnet_imagenet(pretrained: bool = False, **kwargs) -> nn.Module:
    """Any genotype (``genotype=``) as an ImageNet mobile family network: 14 cells, 48 channels, 224x224 input.

    Without ``genotype=`` it builds ``darts_v2`` (4,718,752 params).
    """
    return timm.create_model('cellnet_imagenet', pretrained=pretrained, **kwargs)


def darts_v1_cifar10(pretrained: bool = False, **kwargs) -> nn.Module:
    """DARTS (first order) cell, CIFAR family: 20 cells, 36 channels, 32x32 input, 3,169,414 params.

    Genotype ``darts_v1`` (published by the DARTS authors). https://arxiv.org/abs/1806.09055
    """
    return timm.create_model('darts_v1_cifar10', pretrained=pretrained, **kwargs)


def darts_v2_cifar10(pretrained: bool = False, **kwargs) -> nn.Module:
    """DARTS (second order) cell, CIFAR family: 20 cells, 36 channels, 32x32 input, 3,349,342 params.

    Genotype ``darts_v2`` (published by the DARTS authors). https://arxiv.org/abs/1806.09055
    """
    return timm.create_model('darts_v2_cifar10', pretrained=pretrained, **kwargs)


def darts_v2_imagenet(pretrained: bool = False, **kwargs) -> nn.Module:
    """DARTS (second order) cell, ImageNet mobile family: 14 cells, 48 channels, 224x224 input, 4,718,752 params.

    Genotype ``darts_v2`` (published by the DARTS authors). https://arxiv.org/abs/1806.09055
    """
    return timm.create_model('darts_v2_imagenet', pretrained=pretrained, **kwargs)


def pc_darts_cifar10(pretrained: bool = False, **kwargs) -> nn.Module:
    """PC-DARTS CIFAR-10 cell, CIFAR family: 20 cells, 36 channels, 32x32 input, 3,634,678 params.

    Genotype ``pc_darts_cifar`` (published by the PC-DARTS authors). https://arxiv.org/abs/1907.05737
    """
    return timm.create_model('pc_darts_cifar10', pretrained=pretrained, **kwargs)


def pc_darts_imagenet(pretrained: bool = False, **kwargs) -> nn.Module:
    """PC-DARTS ImageNet cell, ImageNet mobile family: 14 cells, 48 channels, 224x224 input, 5,342,464 params.

    Genotype ``pc_darts_image`` (published by the PC-DARTS authors). https://arxiv.org/abs/1907.05737
    """
    return timm.create_model('pc_darts_imagenet', pretrained=pretrained, **kwargs)
