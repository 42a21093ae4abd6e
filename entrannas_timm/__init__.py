"""EnTranNAS and the DARTS family as a timm model zoo.

``import entrannas_timm`` registers the zoo's models with timm: ``timm.create_model('darts_v2_cifar10')``.
"""
from .models.genotype import Genotype, GenotypeError, list_genotypes, load_genotype, resolve_genotype
from .models.network import CellNetwork
from .models.ops import OPS, SPACES, make_op
from .models.registry import HF_ORG, MODEL_GENOTYPES, WeightsNotPublishedError
from .version import __version__

__all__ = [
    'Genotype', 'GenotypeError', 'list_genotypes', 'load_genotype', 'resolve_genotype', 'HF_ORG', 'MODEL_GENOTYPES',
    'WeightsNotPublishedError', 'CellNetwork', 'OPS', 'SPACES', 'make_op', '__version__',
]
