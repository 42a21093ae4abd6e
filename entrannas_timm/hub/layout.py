"""Hugging Face Hub checkpoints: save and publish zoo models in timm's Hub layout.

A checkpoint is a folder (or Hub repo) with ``config.json`` + ``model.safetensors`` (+ ``README.md``), written
by timm's own :func:`timm.models.save_for_hf` / :func:`~timm.models.push_to_hf_hub`. The config's
``model_args`` hold everything needed to rebuild the same architecture — the genotype (as a dict when it is
not the entrypoint's bundled one), channels, layers, input channels, classes — so that
``timm.create_model('hf-hub:ORG/NAME', pretrained=True)`` gives back the identical network.
"""
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Union

from timm.models import get_pretrained_cfg, push_to_hf_hub, save_for_hf
from timm.models._hub import generate_readme  # timm's model-card format; timm.models does not export it

from ..models.genotype import Genotype
from ..models.network import CellNetwork
from ..models.registry import GENERIC_MODELS, HF_ORG, MODEL_GENOTYPES, WEIGHTS_FILE

__all__ = ['CITATIONS', 'model_args', 'model_card', 'save_pretrained', 'push_to_hub']

CITATIONS = (
    '@inproceedings{yang2021entrannas,\n'
    '  title={Towards Improving the Consistency, Efficiency, and Flexibility of Differentiable Neural Architecture '
    'Search},\n'
    '  author={Yang, Yibo and You, Shan and Li, Hongyang and Wang, Fei and Qian, Chen and Lin, Zhouchen},\n'
    '  booktitle={IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},\n'
    '  year={2021}\n}',
    '@inproceedings{liu2019darts,\n'
    '  title={{DARTS}: Differentiable Architecture Search},\n'
    '  author={Liu, Hanxiao and Simonyan, Karen and Yang, Yiming},\n'
    '  booktitle={International Conference on Learning Representations (ICLR)},\n'
    '  year={2019}\n}',
)
"""BibTeX of EnTranNAS and DARTS (the cell networks), cited by every model card."""

_FAMILY_ARCH = {family: name for name, family in GENERIC_MODELS.items()}


def _same_architecture(a: Genotype, b: Genotype) -> bool:
    return (a.normal, a.reduce, a.space, a.feature_sharing) == (b.normal, b.reduce, b.space, b.feature_sharing)


def _architecture(model: CellNetwork, architecture: Optional[str]) -> str:
    """The registered entrypoint that rebuilds ``model``: given, recorded by timm, or its family's default."""
    if architecture is None:
        architecture = (getattr(model, 'pretrained_cfg', None) or {}).get('architecture')
    if architecture is None:
        architecture = _FAMILY_ARCH[model.stem_type]
    if architecture not in MODEL_GENOTYPES:
        raise ValueError(f'architecture: expected one of {sorted(MODEL_GENOTYPES)}, got {architecture!r}')
    family = MODEL_GENOTYPES[architecture][1]
    if family != model.stem_type:
        raise ValueError(f'architecture: {architecture!r} builds the {family} family but the model has a '
                         f'{model.stem_type} stem')
    return architecture


def model_args(model: CellNetwork, architecture: Optional[str] = None) -> Dict[str, Any]:
    """JSON-serialisable arguments that make ``architecture``'s entrypoint rebuild ``model`` exactly."""
    if not isinstance(model, CellNetwork):
        raise TypeError(f'model: expected an entrannas_timm CellNetwork, got {type(model).__name__}')
    architecture = _architecture(model, architecture)
    default = Genotype.coerce(MODEL_GENOTYPES[architecture][0])
    args: Dict[str, Any] = dict(
        # the bundled name when it is the entrypoint's own genotype, else the whole genotype as data
        genotype=default.name if _same_architecture(model.genotype, default) else model.genotype.to_dict(),
        channels=model.channels, layers=model.layers, in_chans=model.in_chans, num_classes=model.num_classes,
    )
    if model.stem_multiplier != 3:
        args['stem_multiplier'] = model.stem_multiplier
    if model.aux_head is not None:  # its weights are in the checkpoint, so the rebuild needs the head too
        args['auxiliary'] = True
    return args


def model_card(model: CellNetwork, name: str, architecture: Optional[str] = None,
               extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """A timm model card (``generate_readme`` format) that records the genotype and its provenance.

    ``extra`` adds to it: its ``details`` are merged into the card's, its ``description`` is appended, any other
    key (``comparison``, ``license``, ...) is set.
    """
    architecture = _architecture(model, architecture)
    g = model.genotype
    provenance = g.to_dict().get('provenance', {})  # plain dicts and lists
    details: Dict[str, Any] = {
        'Model Type': 'Image classification / feature backbone (DARTS-family cell network)',
        'Architecture': f'`{architecture}` ({model.stem_type} family, {model.layers} cells, '
                        f'{model.channels} channels)',
        'Params (M)': round(sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6, 3),
        'Genotype': f'{g.name or "custom"} (space={g.space}, feature_sharing={g.feature_sharing})',
    }
    if provenance:
        details['Genotype provenance'] = {k: (v if isinstance(v, (str, int, float, bool)) else
                                              json.dumps(v, ensure_ascii=False)) for k, v in provenance.items()}
    card = dict(
        description=f'A `{architecture}` network from the entrannas-timm model zoo, built from the '
                    f'genotype below. The full genotype is in `config.json` '
                    f'(`model_args.genotype`).\n\n```\n{g}\n```',
        details=details,
        usage=(f"```python\nimport entrannas_timm, timm\nmodel = timm.create_model('hf-hub:{name}', pretrained=True)"
               "\n```\n"),
        tags=['image-classification', 'timm', 'entrannas', 'neural-architecture-search'],
        citation=list(CITATIONS),
        license='apache-2.0',
    )
    extra = dict(extra or {})
    card['details'].update(extra.pop('details', {}))
    if 'description' in extra:
        card['description'] += '\n\n' + extra.pop('description')
    card.update(extra)
    return card


def save_pretrained(model: CellNetwork, directory: Union[str, os.PathLike], architecture: Optional[str] = None,
                    name: Optional[str] = None, data_config: Optional[Dict[str, Any]] = None,
                    card: Optional[Dict[str, Any]] = None, files: Optional[Dict[str, bytes]] = None) -> Path:
    """Write ``config.json``, ``model.safetensors`` and ``README.md`` into ``directory`` (atomically per file).

    Args:
        model: The network (from ``timm.create_model`` or built directly).
        directory: Target folder; created if missing, existing files of the same names are replaced.
        architecture: Registered entrypoint to rebuild it with (default: the one timm recorded, or the
            family's ``darts_v2_*``).
        name: Hub repo id for the model card's usage snippet (default ``{HF_ORG}/<folder name>``).
        data_config: Preprocessing to record if it differs from the model's pretrained cfg (timm's argument).
        card: Additions to the model card (see :func:`model_card`).
        files: More files to write next to them (name -> content), e.g. a cell diagram the card shows.
    """
    directory = Path(directory)
    architecture = _architecture(model, architecture)
    args = model_args(model, architecture)
    cfg_missing = not getattr(model, 'pretrained_cfg', None)
    if cfg_missing:  # a CellNetwork built directly: give it its entrypoint's cfg, as timm would have
        model.pretrained_cfg = get_pretrained_cfg(architecture).to_dict()
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{directory.name}.', dir=directory.parent))
    try:
        save_for_hf(model, tmp, model_args=args, safe_serialization=True, data_config=data_config,
                    model_config=dict(pretrained_cfg=dict(hf_hub_filename=WEIGHTS_FILE)))
        readme = model_card(model, name or f'{HF_ORG}/{directory.name}', architecture, card)
        (tmp / 'README.md').write_text(generate_readme(readme, (name or directory.name).split('/')[-1]),
                                       encoding='utf-8')
        for fname, data in (files or {}).items():
            (tmp / fname).write_bytes(data)
        directory.mkdir(parents=True, exist_ok=True)
        for f in tmp.iterdir():
            os.replace(f, directory / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if cfg_missing:
            del model.pretrained_cfg
    return directory


def push_to_hub(model: CellNetwork, repo_id: str, architecture: Optional[str] = None,
                commit_message: str = 'Add model', token: Optional[str] = None, revision: Optional[str] = None,
                private: bool = False, create_pr: bool = False, data_config: Optional[Dict[str, Any]] = None):
    """Publish ``model`` to ``repo_id`` with timm's :func:`push_to_hf_hub` (safetensors only, genotype model card).

    The repo then loads with ``timm.create_model('hf-hub:' + repo_id, pretrained=True)``; a registry tag
    ``name.tag`` loads by name once its repo is ``{HF_ORG}/name.tag`` and it is listed in ``PUBLISHED_TAGS``.
    """
    architecture = _architecture(model, architecture)
    cfg_missing = not getattr(model, 'pretrained_cfg', None)
    if cfg_missing:
        model.pretrained_cfg = get_pretrained_cfg(architecture).to_dict()
    try:
        return push_to_hf_hub(
            model, repo_id, commit_message=commit_message, token=token, revision=revision, private=private,
            create_pr=create_pr, model_args=model_args(model, architecture), safe_serialization=True,
            model_card=model_card(model, repo_id, architecture), data_config=data_config,
            model_config=dict(pretrained_cfg=dict(hf_hub_filename=WEIGHTS_FILE)))
    finally:
        if cfg_missing:
            del model.pretrained_cfg
