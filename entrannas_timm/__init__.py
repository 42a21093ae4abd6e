"""EnTranNAS and the DARTS family as a timm model zoo.

``import entrannas_timm`` registers the zoo's models with timm: ``timm.create_model('darts_v2_cifar10')``.
"""
from .genotype import Genotype, GenotypeError, list_genotypes, load_genotype, resolve_genotype
from .models import HF_ORG, MODEL_GENOTYPES, WeightsNotPublishedError
from .network import CellNetwork
from .ops import OPS, SPACES, make_op

__version__ = '0.1.0'

__all__ = [
    'Genotype', 'GenotypeError', 'list_genotypes', 'load_genotype', 'resolve_genotype', 'HF_ORG', 'MODEL_GENOTYPES',
    'WeightsNotPublishedError', 'CellNetwork', 'OPS', 'SPACES', 'make_op', '__version__',
]
