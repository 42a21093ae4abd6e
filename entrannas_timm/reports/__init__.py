"""Viewers of search records: the records' format and its checked reader, genotype drawings (Graphviz), and the
``entrannas report`` page (architecture film, charts, HTML).

May import :mod:`entrannas_timm.models` and :mod:`entrannas_timm.utils`; matplotlib, Pillow and Graphviz are
imported only here, and only when something is drawn.
"""
