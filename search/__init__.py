"""Differentiable architecture search (DARTS, PC-DARTS, EnTranNAS, EnTranNAS-DST) producing zoo genotypes.

Run ``python -m search --help``. The package imports :mod:`entrannas_timm`, never the reverse.
"""
