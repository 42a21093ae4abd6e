"""The zoo core: operations, the genotype (format, DARTS text, resolution), the cell network, timm registration
and cost counting. This is what ``import entrannas_timm`` loads, and all a timm user needs.

It may import only :mod:`entrannas_timm.utils`; no training, data loading, Hub publishing, plotting or
record-reading code, so ``import entrannas_timm`` stays as light as torch and timm themselves.
"""
from .baselines import BASELINE_MODELS
from .constants import DATASET_STATS
from .genotype import CellSpec, Genotype, GenotypeError, GenotypeLike, list_genotypes, load_genotype, resolve_genotype
from .network import CellNetwork
from .ops import OPS, SPACES, make_op
from .profile import count_macs, count_params, model_cost
from .registry import FAMILIES, GENERIC_MODELS, HF_ORG, MODEL_GENOTYPES, WEIGHTS_FILE, WeightsNotPublishedError

__all__ = [
    'BASELINE_MODELS', 'DATASET_STATS', 'CellSpec', 'Genotype', 'GenotypeError', 'GenotypeLike', 'list_genotypes',
    'load_genotype', 'resolve_genotype', 'CellNetwork', 'OPS', 'SPACES', 'make_op', 'count_macs', 'count_params',
    'model_cost', 'FAMILIES', 'GENERIC_MODELS', 'HF_ORG', 'MODEL_GENOTYPES', 'WEIGHTS_FILE',
    'WeightsNotPublishedError',
]
