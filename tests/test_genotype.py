"""The genotype format: JSON round trips, bundled lookup, DARTS text, and validation errors."""
from __future__ import annotations

import copy
import json
import os
import random
from pathlib import Path

import pytest

from entrannas_timm.models import genotype as genotype_module
from entrannas_timm.models.genotype import (
    SCHEMA_VERSION,
    CellSpec,
    Genotype,
    GenotypeError,
    list_genotypes,
    load_genotype,
)

# The four genotypes of issue 2, verbatim as their authors publish them (quark0/darts cnn/genotypes.py,
# yuhuixu1993/PC-DARTS genotypes.py).
ISSUE_TEXTS = {
    'darts_v1': "DARTS_V1 = Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])",  # noqa: E501
    'darts_v2': "DARTS_V2 = Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])",  # noqa: E501
    'pc_darts_cifar': "PC_DARTS_cifar = Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), ('dil_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), ('dil_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_5x5', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_5x5', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2)], reduce_concat=range(2, 6))",  # noqa: E501
    'pc_darts_image': "PC_DARTS_image = Genotype(normal=[('skip_connect', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('dil_conv_5x5', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('skip_connect', 1), ('dil_conv_5x5', 2), ('max_pool_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 3)], reduce_concat=range(2, 6))",  # noqa: E501
}


def _dst_dict() -> dict:
    """An EnTranNAS-DST-style genotype: in-degrees 1, 2, 4 and 3, two ops on one edge, extended space."""
    return {
        'format': 'entrannas-genotype', 'schema_version': SCHEMA_VERSION, 'name': 'dst_example',
        'space': 'extended', 'feature_sharing': True,
        'normal': {'nodes': [[['sep_conv_3x3', 1]],
                             [['sep_conv_3x3', 0], ['skip_connect', 1]],
                             [['conv_3x3', 0], ['dil_conv_3x3', 1], ['sep_conv_5x5', 2], ['max_pool_3x3', 3]],
                             [['sep_conv_3x3', 4], ['dil_conv_5x5', 4], ['conv_1x1', 2]]],
                   'concat': [2, 3, 4, 5]},
        'reduce': {'nodes': [[['max_pool_3x3', 0], ['max_pool_3x3', 1]], [['skip_connect', 2]]],
                   'concat': [2, 3]},
        'provenance': {'method': 'EnTranNAS-DST', 'dataset': 'CIFAR-10', 'seed': 0, 'metrics': {'top1': 97.0}},
    }


def _bundled_dict(name: str = 'darts_v2') -> dict:
    return load_genotype(name).to_dict()


def _error(data, source='test.json') -> GenotypeError:
    with pytest.raises(GenotypeError) as info:
        Genotype.from_dict(data, source=source)
    return info.value


# ---- format round trips ---------------------------------------------------------------------------
def test_bundled_genotypes_listed_and_loadable():
    names = list_genotypes()
    assert {'darts_v1', 'darts_v2', 'pc_darts_cifar', 'pc_darts_image'} <= set(names)
    for name in names:
        g = load_genotype(name)
        assert g.name == name
        assert g.provenance['source'] and g.provenance['paper_id']


@pytest.mark.parametrize('name', sorted(ISSUE_TEXTS))
def test_bundled_files_match_published_text(name):
    published = Genotype.parse_darts(ISSUE_TEXTS[name])
    bundled = load_genotype(name)
    assert (bundled.normal, bundled.reduce, bundled.space) == (published.normal, published.reduce, 'standard')


def test_lookup_is_case_insensitive():
    assert load_genotype('DARTS_V2') == load_genotype('darts_v2') == load_genotype('Darts_V2')
    assert Genotype.coerce('PC_DARTS_CIFAR') == load_genotype('pc_darts_cifar')


def test_unknown_bundled_name_lists_the_choices():
    with pytest.raises(GenotypeError, match='darts_v2') as info:
        load_genotype('no_such_genotype')
    assert info.value.field == 'genotype'


@pytest.mark.parametrize('make', [lambda: load_genotype('darts_v2'), lambda: Genotype.from_dict(_dst_dict())])
def test_json_round_trip(tmp_path, make):
    g = make()
    path = g.save(tmp_path / 'sub' / 'g.json')
    back = Genotype.load(path)
    assert back == g
    assert dict(back.provenance) == dict(g.provenance)
    assert back.to_json() == g.to_json() == path.read_text()
    assert json.loads(path.read_text())['schema_version'] == SCHEMA_VERSION
    assert Genotype.from_dict(json.loads(path.read_text())) == g


def test_saved_file_gets_the_mode_open_would_give(tmp_path):
    path = load_genotype('darts_v1').save(tmp_path / 'g.json')
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_save_keeps_old_file_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / 'g.json'
    load_genotype('darts_v1').save(path)
    old = path.read_text()

    real_fdopen = os.fdopen

    class HalfWriter:
        """A file that writes half of what it is given, then fails (a full disk, a killed process)."""

        def __init__(self, f):
            self.f = f

        def write(self, text):
            self.f.write(text[: len(text) // 2])
            self.f.flush()
            raise OSError(28, 'No space left on device')

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(genotype_module.os, 'fdopen', lambda *a, **k: HalfWriter(real_fdopen(*a, **k)))
    with pytest.raises(OSError, match='No space'):
        load_genotype('darts_v2').save(path)
    monkeypatch.undo()
    assert path.read_text() == old
    assert Genotype.load(path).normal == load_genotype('darts_v1').normal
    assert sorted(p.name for p in tmp_path.iterdir()) == ['g.json']  # no temp file left behind


def test_genotype_path_env_adds_and_overrides(tmp_path, monkeypatch):
    custom = Genotype.from_dict(_dst_dict()).replace(name='my_cell')
    custom.save(tmp_path / 'My_Cell.json')
    # a file named like a bundled genotype in the env path takes precedence
    load_genotype('darts_v1').replace(name='darts_v2').save(tmp_path / 'darts_v2.json')
    monkeypatch.setenv('ENTRANNAS_GENOTYPE_PATH', os.pathsep.join([str(tmp_path), str(tmp_path / 'missing')]))
    assert 'my_cell' in list_genotypes()
    assert load_genotype('MY_CELL') == custom
    assert load_genotype('darts_v2').normal == load_genotype('darts_v1').normal


def test_immutable_and_hashable():
    g = load_genotype('darts_v2')
    with pytest.raises(AttributeError):
        g.space = 'extended'
    with pytest.raises(TypeError):
        g.provenance['method'] = 'x'
    assert len({g, load_genotype('DARTS_V2')}) == 1


def test_multi_input_dst_genotype_is_valid():
    g = Genotype.from_dict(_dst_dict())
    assert [len(n) for n in g.normal.nodes] == [1, 2, 4, 3]
    assert g.normal.nodes[3][:2] == (('sep_conv_3x3', 4), ('dil_conv_5x5', 4))  # two ops on one edge
    assert g.feature_sharing and not g.is_darts_representable
    assert 'conv_1x1' in g.ops_used()
    assert 'node 2 = conv_3x3(c_{k-2}), dil_conv_3x3(c_{k-1}), sep_conv_5x5(node 0), max_pool_3x3(node 1)' in str(g)


# ---- DARTS text -----------------------------------------------------------------------------------
@pytest.mark.parametrize('name', sorted(ISSUE_TEXTS))
def test_darts_text_round_trips_exactly(name):
    text = ISSUE_TEXTS[name]
    g = Genotype.parse_darts(text)
    var = text.split(' = ')[0]
    assert g.name == var
    style = 'range' if 'range(' in text else 'list'
    assert g.to_darts(assign=var, concat_style=style) == text
    assert Genotype.parse_darts(g.to_darts()) == g.replace(name=None)


def test_darts_text_forms():
    body = ISSUE_TEXTS['pc_darts_cifar'].split(' = ', 1)[1]
    g = Genotype.parse_darts(body, name='pc')
    assert g.name == 'pc' and g.normal.concat == (2, 3, 4, 5)
    listed = body.replace('range(2, 6)', '[2, 3, 4, 5]')
    assert Genotype.parse_darts(listed, name='pc') == g
    # multi-line, indented, as in a genotypes.py; positional fields; attribute call genotypes.Genotype(...)
    multi = '    X = Genotype(\n      normal=[\n  ("sep_conv_3x3", 0), ("sep_conv_3x3", 1)],\n' \
            '      normal_concat=[2],\n      reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1)],\n' \
            '      reduce_concat=range(2, 3))\n'
    assert Genotype.parse_darts(multi).normal.nodes == ((('sep_conv_3x3', 0), ('sep_conv_3x3', 1)),)
    pos = 'genotypes.Genotype([("sep_conv_3x3", 0), ("sep_conv_3x3", 1)], [2], [("max_pool_3x3", 0), ' \
          '("max_pool_3x3", 1)], [2])'
    assert Genotype.parse_darts(pos).reduce.concat == (2,)
    assert Genotype.coerce(ISSUE_TEXTS['darts_v2']).normal == load_genotype('darts_v2').normal
    assert Genotype.coerce(ISSUE_TEXTS['darts_v2'].replace(' = ', '=')).name == 'DARTS_V2'


def test_snas_edge_all_form_is_told_from_darts_pairs_by_the_concat():
    """SNAS's model_edge_all.py reads 14 pairs as nodes of 2, 3, 4, 5 connections; DARTS's model.py reads 14 pairs
    as 7 nodes of 2: the concat's node count decides which a text means."""
    edges = [('sep_conv_3x3' if i < 2 else 'none', i) for n in range(4) for i in range(n + 2)]  # every predecessor
    text = f'Genotype(normal={edges}, normal_concat=range(2, 6), reduce={edges}, reduce_concat=range(2, 6))'
    g = Genotype.parse_darts(text)
    assert [len(n) for n in g.normal.nodes] == [2, 3, 4, 5]
    assert g.normal.nodes[3] == (('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('none', 2), ('none', 3), ('none', 4))
    pairs = [('sep_conv_3x3', i % 2) for i in range(14)]
    seven = Genotype.parse_darts(f'Genotype(normal={pairs}, normal_concat=range(2, 9), reduce={pairs}, '
                                 'reduce_concat=range(2, 9))')
    assert [len(n) for n in seven.normal.nodes] == [2] * 7
    mild = load_genotype('snas_mild')  # imported from SNAS_mild_edge_all: the authors' order kept
    assert [len(n) for n in mild.reduce.nodes] == [2, 3, 4, 5]
    assert [i for _, i in mild.reduce.nodes[3]] == [0, 2, 1, 3, 4]


def test_darts_genotypes_file_picks_one_by_name(tmp_path):
    text = ('from collections import namedtuple\n'
            "Genotype = namedtuple('Genotype', 'normal normal_concat reduce reduce_concat')\n"
            "PRIMITIVES = ['none', 'skip_connect']\n" + '\n'.join(ISSUE_TEXTS.values()) + '\nDARTS = DARTS_V2\n')
    path = tmp_path / 'genotypes.py'
    path.write_text(text)
    with pytest.raises(GenotypeError, match='4 genotypes are defined.*DARTS_V1, DARTS_V2') as info:
        Genotype.load(path)
    assert info.value.source == str(path)
    g = Genotype.parse_darts(text, name='darts_v2')
    assert g.name == 'darts_v2' and g.normal == load_genotype('darts_v2').normal
    with pytest.raises(GenotypeError, match="'nasnet' is none of them"):
        Genotype.parse_darts(text, name='nasnet')
    single = tmp_path / 'one.txt'
    single.write_text(ISSUE_TEXTS['pc_darts_image'])
    assert Genotype.load(single).name == 'PC_DARTS_image'
    assert load_genotype(str(single)).reduce == load_genotype('pc_darts_image').reduce


def test_darts_text_uses_smallest_space():
    text = ISSUE_TEXTS['darts_v2'].replace("('skip_connect', 0), ('dil_conv_3x3', 2)",
                                           "('conv_1x1', 0), ('dil_conv_3x3', 2)")
    assert Genotype.parse_darts(text).space == 'extended'
    assert Genotype.parse_darts(ISSUE_TEXTS['darts_v2']).space == 'standard'


def test_darts_export_refuses_other_in_degrees():
    g = Genotype.from_dict(dict(_dst_dict(), feature_sharing=False))
    with pytest.raises(GenotypeError, match='exactly 2 connections per node'):
        g.to_darts()
    two = load_genotype('darts_v2').replace(feature_sharing=True)
    with pytest.raises(GenotypeError, match='feature_sharing'):
        two.to_darts()


@pytest.mark.parametrize('text, match', [
    ('Genotype(normal=[', 'not valid DARTS genotype text'),
    ('x = 1', 'expected a call Genotype'),
    ("Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=[2], reduce=[('max_pool_3x3', 0)], reduce_concat=[2])",
     '2 connections per node'),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=[2], reduce=[])",
     r"missing fields \['reduce_concat'\]"),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=[2], "
     "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2], extra=1)", 'unknown fields'),
    ("Genotype(normal=[('sep_conv_3x3', '0'), ('sep_conv_3x3', 1)], normal_concat=[2], "
     "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])", "list of \\('op', input\\) tuples"),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range('a'), "
     "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])", 'range'),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=[2], "
     "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=__import__('os'))", 'literal'),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 5)], normal_concat=[2], "
     "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])", r'normal.nodes\[0\]\[1\].*out of range'),
    ("Genotype(**{})", 'keyword'),
])
def test_darts_text_errors(text, match):
    with pytest.raises(GenotypeError, match=match) as info:
        Genotype.parse_darts(text, source='genotypes.py')
    assert info.value.source == 'genotypes.py'


# ---- validation: every error is a GenotypeError naming the file and the field ------------------------
def _set(path, value):
    def mutate(d):
        *head, last = path
        for k in head:
            d = d[k]
        d[last] = value
    return mutate


def _delete(*path):
    def mutate(d):
        *head, last = path
        for k in head:
            d = d[k]
        del d[last]
    return mutate


CASES = [
    # (mutation of darts_v2's dict, expected field, message fragment)
    (_set(('normal', 'nodes', 0, 0, 0), 'sep_conv_9x9'), 'normal.nodes[0][0]', 'unknown op'),
    (_set(('normal', 'nodes', 0, 0, 0), 'conv_3x3'), 'normal.nodes[0][0]', "not in the 'standard' space"),
    (_set(('reduce', 'nodes', 1, 1, 1), 7), 'reduce.nodes[1][1]', 'out of range'),
    (_set(('reduce', 'nodes', 1, 1, 1), 3), 'reduce.nodes[1][1]', 'out of range'),  # itself
    (_set(('reduce', 'nodes', 1, 1, 1), -1), 'reduce.nodes[1][1]', 'out of range'),
    (_set(('normal', 'nodes', 2), []), 'normal.concat', 'concat names node 4, which is empty'),
    (_set(('normal', 'nodes', 0), []), 'normal.nodes[3][1]', 'input 2 is node 0, which is empty'),
    (_set(('normal', 'nodes'), [[], []]), 'normal.nodes', 'every node is empty'),
    (_set(('normal', 'nodes'), []), 'normal.nodes', 'non-empty list'),
    (_set(('normal', 'nodes'), [[['skip_connect', 0]]] * 17), 'normal.nodes', 'at most 16'),
    (_set(('normal', 'nodes', 0), [['skip_connect', 0]] * 65), 'normal.nodes[0]', 'at most 64'),
    (_set(('network',), {'mobile': {}}), 'network', 'unknown family'),
    (_set(('network',), {'imagenet': {'width': 2}}), 'network.imagenet', 'unknown setting'),
    (_set(('network',), {'imagenet': {'channels': 10 ** 9}}), 'network.imagenet.channels', '2..1024'),
    (_set(('network',), {'imagenet': {'channels': True}}), 'network.imagenet.channels', '2..1024'),
    (_set(('network',), [1]), 'network', 'object'),
    (_set(('drop_path',), 'cell'), 'drop_path', "one of ['path', 'node']"),
    (_set(('bn_after',), 'max_pool_3x3'), 'bn_after', 'list of op names'),
    (_set(('bn_after',), ['conv_3x3']), 'bn_after', "ops of the 'standard' space"),
    (_set(('bn_after',), ['none']), 'bn_after', 'not none'),
    (_set(('bn_after',), ['max_pool_3x3', 'max_pool_3x3']), 'bn_after', 'distinct'),
    (_set(('name',), ''), 'name', '1 to 128 characters'),
    (_set(('name',), 'x' * 129), 'name', '1 to 128 characters'),
    (_set(('name',), 'a\nb'), 'name', 'printable'),
    (_set(('name',), '\ud800'), 'name', 'printable'),
    (_set(('provenance',), {'note': 'x\udfff'}), 'provenance.note', 'not valid Unicode'),
    (_set(('normal', 'concat'), [2, 3, 4, 6]), 'normal.concat', 'does not exist'),
    (_set(('normal', 'concat'), [1, 2]), 'normal.concat', 'does not exist'),
    (_set(('normal', 'concat'), []), 'normal.concat', 'at least one'),
    (_set(('normal', 'concat'), [2, 2]), 'normal.concat', 'duplicate'),
    (_set(('normal', 'nodes', 0, 1), ['sep_conv_3x3', 0]), 'normal.nodes[0][1]', 'duplicate connection'),
    (_delete('schema_version'), 'schema_version', 'missing'),
    (_set(('schema_version',), 3), 'schema_version', 'unsupported 3'),
    (_set(('schema_version',), 10 ** 30), 'schema_version', 'unsupported'),
    (_set(('schema_version',), '1'), 'schema_version', 'unsupported'),
    (_set(('schema_version',), True), 'schema_version', 'unsupported'),
    (_set(('schema_version',), 1.0), 'schema_version', 'unsupported'),
    (_set(('format',), 'other'), 'format', "expected 'entrannas-genotype'"),
    (_set(('space',), 'huge'), 'space', 'unknown space'),
    (_set(('space',), ['standard']), 'space', 'unknown space'),
    (_set(('feature_sharing',), 'yes'), 'feature_sharing', 'true or false'),
    (_set(('feature_sharing',), 1), 'feature_sharing', 'true or false'),
    (_set(('name',), 3), 'name', 'string'),
    (_set(('provenance',), []), 'provenance', 'object'),
    (_set(('normal',), []), 'normal', 'object'),
    (_delete('reduce'), 'reduce', 'missing'),
    (_set(('reduce', 'extra'), 1), 'reduce', 'unknown field'),
    (_set(('normal', 'nodes'), {'0': []}), 'normal.nodes', 'non-empty list'),
    (_set(('normal', 'nodes', 0), {'op': 'sep_conv_3x3'}), 'normal.nodes[0]', 'list of [op, input] pairs'),
    (_set(('normal', 'nodes', 0, 0), ['sep_conv_3x3', '0']), 'normal.nodes[0][0]', '["op", input_index]'),
    (_set(('normal', 'nodes', 0, 0), ['sep_conv_3x3', True]), 'normal.nodes[0][0]', '["op", input_index]'),
    (_set(('normal', 'nodes', 0, 0), ['sep_conv_3x3', 0.0]), 'normal.nodes[0][0]', '["op", input_index]'),
    (_set(('normal', 'nodes', 0, 0), ['sep_conv_3x3']), 'normal.nodes[0][0]', '["op", input_index]'),
    (_set(('normal', 'nodes', 0, 0), [3, 0]), 'normal.nodes[0][0]', '["op", input_index]'),
    (_set(('normal', 'nodes', 0, 0), 'sep_conv_3x3'), 'normal.nodes[0][0]', '["op", input_index]'),
    (_set(('normal', 'concat'), '2345'), 'normal.concat', 'list of node indices'),
    (_set(('normal', 'concat'), [2, '3']), 'normal.concat', 'list of node indices'),
    (_set(('normal', 'concat'), {'a': 2}), 'normal.concat', 'list of node indices'),
]


@pytest.mark.parametrize('mutate, field, message', CASES)
def test_validation_errors_name_file_and_field(mutate, field, message):
    data = _bundled_dict()
    mutate(data)
    err = _error(data, source='cells/my.json')
    assert isinstance(err, ValueError)
    assert err.source == 'cells/my.json' and err.field == field, str(err)
    assert message in str(err) and str(err).startswith(f'cells/my.json: {field}: ')


def test_unknown_top_level_field():
    err = _error(dict(_bundled_dict(), genome=1))
    assert "unknown field(s) ['genome']" in str(err) and err.source == 'test.json'


def test_not_an_object():
    assert 'expected a JSON object, got list' in str(_error([1, 2]))


def test_errors_from_files_name_the_path(tmp_path):
    bad = tmp_path / 'bad.json'
    bad.write_text('{"schema_version": 1, "normal": ')
    with pytest.raises(GenotypeError, match='malformed JSON') as info:
        load_genotype(str(bad))
    assert info.value.source == str(bad)
    bad.write_text('{"schema_version": 1, "schema_version": 1}')
    with pytest.raises(GenotypeError, match="'schema_version' appears twice"):
        Genotype.load(bad)
    bad.write_bytes(b'\xff\xfe{}')
    with pytest.raises(GenotypeError, match='not UTF-8'):
        Genotype.load(bad)
    data = _bundled_dict()
    data['reduce']['nodes'][0][0][0] = 'max_pool_9x9'
    bad.write_text(json.dumps(data))
    with pytest.raises(GenotypeError, match=r"bad.json: reduce.nodes\[0\]\[0\]: unknown op 'max_pool_9x9'"):
        load_genotype(bad)
    with pytest.raises(GenotypeError, match='not found') as info:
        load_genotype(tmp_path / 'missing.json')
    assert info.value.source == str(tmp_path / 'missing.json')
    with pytest.raises(GenotypeError, match='cannot read'):
        Genotype.load(tmp_path)


def test_direct_construction_is_validated():
    good = load_genotype('darts_v2')
    with pytest.raises(GenotypeError, match='CellSpec'):
        Genotype(normal='abc', reduce=good.reduce)
    with pytest.raises(GenotypeError, match='tuple of'):
        Genotype(normal=CellSpec(nodes=[[('sep_conv_3x3', 0)]], concat=(2,)), reduce=good.reduce)
    with pytest.raises(GenotypeError, match=r'\("op", input_index\)'):
        Genotype(normal=CellSpec(nodes=((('sep_conv_3x3',),),), concat=(2,)), reduce=good.reduce)
    with pytest.raises(GenotypeError, match='space'):
        Genotype(good.normal, good.reduce, space=['standard'])
    with pytest.raises(GenotypeError, match='true or false'):
        Genotype(good.normal, good.reduce, feature_sharing=None)
    with pytest.raises(GenotypeError, match='expected a Genotype, bundled name'):
        Genotype.coerce(3)


def test_replace_revalidates():
    g = load_genotype('darts_v2')
    assert g.replace(space='extended').space == 'extended'
    with pytest.raises(GenotypeError, match='space'):
        Genotype.from_dict(_dst_dict()).replace(space='standard')


# ---- fuzz: mutated bundled JSON only ever raises GenotypeError ------------------------------------------
_ODD_VALUES = ['', 'sep_conv_3x3', 0, 1, 2, -1, 99, 1.5, True, False, None, [], {}, [[]], ['skip_connect', 0],
               {'nodes': []}, 'none', 'standard', 'extended']


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _mutate(data, rng: random.Random) -> None:
    paths = [p for p in _paths(data) if p]
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(paths)
        parent = data
        try:
            for k in path[:-1]:
                parent = parent[k]
            key = path[-1]
            parent[key]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this path
        if not isinstance(parent, (dict, list)):
            continue  # an earlier mutation replaced a container by a string
        action = rng.random()
        if action < 0.3:
            del parent[key]
        elif action < 0.5 and isinstance(parent[key], (list, dict)):
            parent[key] = list(parent[key].values()) if isinstance(parent[key], dict) else dict(
                enumerate(parent[key]))
        elif action < 0.6 and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        else:
            parent[key] = copy.deepcopy(rng.choice(_ODD_VALUES))


def test_fuzz_mutated_json_only_raises_genotype_error(tmp_path):
    rng = random.Random(1234)
    sources = [_bundled_dict(n) for n in ('darts_v1', 'pc_darts_image')] + [_dst_dict()]
    outcomes = {'ok': 0, 'error': 0}
    path = tmp_path / 'fuzz.json'
    for i in range(1500):
        data = copy.deepcopy(rng.choice(sources))
        _mutate(data, rng)
        try:
            if i % 4 == 0:  # also through the file reader, with a corrupted text now and then
                text = json.dumps(data)
                if i % 8 == 0:
                    cut = rng.randrange(len(text))
                    text = text[:cut] + rng.choice(['', '"', ']', '{', ',', 'x']) + text[cut + 1:]
                path.write_text(text)
                Genotype.load(path)
            else:
                Genotype.from_dict(data, source='fuzz')
            outcomes['ok'] += 1
        except GenotypeError:
            outcomes['error'] += 1
    # the fuzz must exercise both sides: most mutations break the file, some are harmless
    assert outcomes["error"] > 750 and outcomes["ok"] > 20, outcomes


def test_spec_example_is_valid():
    """The example in docs/genotype-format.md is a valid file of the current schema version."""
    doc = (Path(__file__).resolve().parents[1] / 'docs' / 'genotype-format.md').read_text()
    example = doc.split('```json\n', 1)[1].split('```', 1)[0]
    g = Genotype.from_dict(json.loads(example), source='docs/genotype-format.md')
    assert [len(n) for n in g.normal.nodes] == [1, 2, 4, 2] and g.feature_sharing


# ---- schema versions ---------------------------------------------------------------------------------------
def test_version_1_files_load_with_the_same_meaning(tmp_path):
    v2 = load_genotype('darts_v2')
    v1 = dict(v2.to_dict(), schema_version=1)
    path = tmp_path / 'old.json'
    path.write_text(json.dumps(v1))
    g = Genotype.load(path)
    assert g == v2 and g.to_dict()['schema_version'] == SCHEMA_VERSION == 2


@pytest.mark.parametrize('mutate, message', [
    (_set(('normal', 'nodes', 0, 0, 0), 'none'), 'need schema_version 2'),
    (_set(('normal', 'nodes', 2), []), 'need schema_version 2'),
    (_set(('network',), {'imagenet': {'channels': 50}}), "unknown field(s) ['network'] in schema_version 1"),
    (_set(('drop_path',), 'node'), "unknown field(s) ['drop_path'] in schema_version 1"),
])
def test_version_1_files_are_read_with_version_1_rules(mutate, message):
    data = dict(_bundled_dict(), schema_version=1)
    mutate(data)
    assert message in str(_error(data))
    data['schema_version'] = 2
    del data['normal']['concat']  # the nodes that have connections
    Genotype.from_dict(data)  # what version 1 refused, version 2 reads


def test_version_2_semantics_round_trip(tmp_path):
    data = _bundled_dict()
    data['normal']['nodes'][1] = []  # absent node; node 3 reads node 0 only
    data['normal']['nodes'][0][1] = ['none', 1]
    data.update(network={'imagenet': {'channels': 50, 'stem_multiplier': 3}}, drop_path='node',
                bn_after=['max_pool_3x3', 'skip_connect'])
    del data['normal']['concat']
    g = Genotype.from_dict(data)
    assert g.normal.concat == (2, 4, 5) and g.normal.present == (2, 4, 5)
    assert g.network_settings('imagenet') == {'channels': 50, 'stem_multiplier': 3}
    assert g.network_settings('cifar') == {}
    back = Genotype.load(g.save(tmp_path / 'g.json'))
    assert back == g and back.drop_path == 'node' and back.bn_after == ('max_pool_3x3', 'skip_connect')
    assert 'node 1 = (absent: no inputs)' in str(g) and 'drop_path=node' in str(g)
    assert not g.is_darts_representable
    with pytest.raises(GenotypeError, match='drop_path'):
        load_genotype('darts_v2').replace(drop_path='node').to_darts()


# ---- DARTS text as the DARTS family's repositories write it -----------------------------------------------
GDAS_TEXT = '''GDAS_V1 = Genotype(
  normal=[
    (('skip_connect', 0), ('skip_connect', 1)),
    (('skip_connect', 0), ('sep_conv_5x5', 2)),
    (('sep_conv_3x3', 3), ('skip_connect', 0)),
    (('sep_conv_5x5', 4), ('sep_conv_3x3', 3))],
  normal_concat=[2, 3, 4, 5],
  reduce=[
    (('sep_conv_5x5', 0), ('sep_conv_3x3', 1)),
    (('sep_conv_5x5', 2), ('sep_conv_5x5', 1)),
    (('dil_conv_5x5', 2), ('sep_conv_3x3', 1)),
    (('sep_conv_5x5', 0), ('sep_conv_5x5', 1))],
  reduce_concat=[2, 3, 4, 5],
  connectN=None, connects=None
)'''
# FairDARTS_c of xiaomi-automl/FairDARTS fairdarts/genotypes.py: normal node 3 is fed by nothing, and node 5 reads it
FAIRDARTS_C = ("FairDARTS_c = Genotype(normal=[('max_pool_3x3', 2, 0), ('sep_conv_5x5', 2, 1), "
               "('dil_conv_3x3', 4, 0), ('dil_conv_5x5', 4, 2), ('skip_connect', 5, 3), ('sep_conv_3x3', 5, 0)], "
               "normal_concat=range(2, 6), reduce=[('dil_conv_3x3', 2, 1), ('dil_conv_5x5', 2, 0), "
               "('dil_conv_3x3', 3, 0), ('sep_conv_3x3', 3, 1), ('sep_conv_5x5', 4, 0), ('sep_conv_5x5', 4, 3), "
               "('sep_conv_5x5', 5, 0), ('skip_connect', 5, 1)], reduce_concat=range(2, 6))")


def test_nodes_of_pairs_and_extra_none_fields():
    g = Genotype.parse_darts(GDAS_TEXT)
    assert g.name == 'GDAS_V1' and [len(n) for n in g.normal.nodes] == [2, 2, 2, 2]
    assert g.normal.nodes[3] == (('sep_conv_5x5', 4), ('sep_conv_3x3', 3))
    assert g.to_darts() == Genotype.parse_darts(g.to_darts()).to_darts()  # and back to the pair form
    with pytest.raises(GenotypeError, match="unknown fields \\['connects'\\]"):
        Genotype.parse_darts(GDAS_TEXT.replace('connects=None', 'connects=[1]'))


def test_fairdarts_triples_follow_its_evaluation_cell():
    g = Genotype.parse_darts(FAIRDARTS_C)
    # node 3 (index 1) is absent; the skip from it, which FairDARTS skips, has no parameters and is dropped
    assert g.normal.nodes == ((('max_pool_3x3', 0), ('sep_conv_5x5', 1)), (),
                              (('dil_conv_3x3', 0), ('dil_conv_5x5', 2)), (('sep_conv_3x3', 0),))
    assert g.normal.concat == (2, 4, 5) and g.reduce.concat == (2, 3, 4, 5)  # *_concat ignored
    assert g.drop_path == 'node'
    # an edge with parameters from a node nothing feeds: FairDARTS builds it, unused; refused here
    with pytest.raises(GenotypeError, match="reads node 3, which nothing feeds"):
        Genotype.parse_darts(FAIRDARTS_C.replace("('skip_connect', 5, 3)", "('sep_conv_3x3', 5, 3)"))
    with pytest.raises(GenotypeError, match='order'):
        Genotype.parse_darts(FAIRDARTS_C.replace("('max_pool_3x3', 2, 0), ('sep_conv_5x5', 2, 1), ",
                                                 "").replace("('sep_conv_3x3', 5, 0)]",
                                                             "('sep_conv_3x3', 5, 0), ('max_pool_3x3', 2, 0)]"))
    with pytest.raises(GenotypeError, match=r'0 <= from < to'):
        Genotype.parse_darts(FAIRDARTS_C.replace("('sep_conv_3x3', 5, 0)", "('sep_conv_3x3', 5, 5)"))


def test_aliases_pick_their_genotype():
    text = ISSUE_TEXTS['darts_v1'] + '\n' + ISSUE_TEXTS['darts_v2'] + '\nBEST = DARTS_V2\nDARTS = BEST\n'
    assert Genotype.parse_darts(text, name='darts').normal == load_genotype('darts_v2').normal
    assert Genotype.parse_darts(ISSUE_TEXTS['darts_v1'] + '\nX = DARTS_V1\n').name == 'DARTS_V1'


# ---- untrusted input: every case is one clear error ---------------------------------------------------------
_DARTS_CELLS = "normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)]"


@pytest.mark.parametrize('text, message', [
    ('{"schema_version": 2, "name": ' + '9' * 5000 + '}', 'malformed JSON: Exceeds the limit (4300 digits)'),
    ('{"schema_version": 2, "name": "\\ud800", "normal": {"nodes": [[["skip_connect", 0]]]}, '
     '"reduce": {"nodes": [[["skip_connect", 0]]]}}', 'name: expected printable text'),
    (f'Genotype({_DARTS_CELLS}, normal_concat=range(2, {10 ** 23}), reduce_concat=[2])', 'names nodes beyond any cell'),
    (f'Genotype({_DARTS_CELLS}, normal_concat=range(2, 10**23), reduce_concat=[2])', 'range(start, stop[, step])'),
    (f'Genotype({_DARTS_CELLS}, normal_concat=range(2, 6, 0), reduce_concat=[2])', 'step must not be zero'),
    (f'Genotype({_DARTS_CELLS}, normal_concat=[{"9" * 5000}], reduce_concat=[2])', 'not valid DARTS genotype text'),
    ('Genotype(normal=' + '[' * 5000 + ']' * 5000 + ')', 'not valid DARTS genotype text'),
    ('{"schema_version": 2, "normal": ' + '[' * 100000 + ']' * 100000 + '}', 'nested too deeply'),
])
def test_hostile_files_give_one_clear_error(tmp_path, text, message):
    path = tmp_path / ('g.json' if text.startswith('{') else 'g.py')
    path.write_text(text)
    with pytest.raises(GenotypeError) as info:
        load_genotype(str(path))
    assert message in str(info.value) and str(info.value).startswith(str(path))
    str(info.value).encode('utf-8')  # printable


def test_size_limits_of_files_and_chained_nodes(tmp_path):
    big = tmp_path / 'big.json'
    big.write_text(json.dumps(dict(_bundled_dict(), provenance={'pad': 'x' * (1 << 20)})))
    with pytest.raises(GenotypeError, match='larger than 1,048,576 bytes'):
        load_genotype(str(big))
    # 5,000 chained nodes (issue: a 120 KB file asked for 1.4 billion parameters)
    chain = _bundled_dict()
    chain['normal'] = {'nodes': [[['sep_conv_5x5', j + 1]] for j in range(5000)], 'concat': [5001]}
    with pytest.raises(GenotypeError, match='5,000 nodes; a genotype may have at most 16'):
        Genotype.from_dict(chain, source='hub config.json')


# ---- the entrannas command on hostile input and failing disks ------------------------------------------------
def _cli(capsys, *args: str) -> tuple:
    from entrannas_timm.cli import main
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _read_only_dir(tmp_path: Path) -> Path:
    """A folder this process cannot write to: a chmod 0o555 folder, or (as root, which ignores modes) /sys."""
    folder = tmp_path / 'ro'
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (folder, Path('/sys')):
        try:
            (candidate / '.probe').write_text('')
        except OSError:
            return candidate
        (candidate / '.probe').unlink()
    pytest.skip('no folder here refuses writes')


def test_cli_surrogate_name_is_one_line(capsys, tmp_path):
    path = tmp_path / 'g.json'
    path.write_text(json.dumps(dict(_bundled_dict(), name='\ud800')))
    code, out, err = _cli(capsys, 'genotype', str(path))
    assert code == 2 and out == '' and err.count('\n') == 1 and 'name: expected printable text' in err


@pytest.mark.parametrize('where', ['folder', 'read-only folder'])
def test_cli_unwritable_output_is_one_line_and_keeps_files(capsys, tmp_path, where):
    target = tmp_path / 'out.json' if where == 'folder' else _read_only_dir(tmp_path) / 'out.json'
    if where == 'folder':
        target.mkdir()
    code, out, err = _cli(capsys, 'genotype', 'darts_v2', '--to-json', str(target))
    assert code == 1 and err.count('\n') == 1 and err.startswith(f'entrannas genotype: error: cannot write {target}')
    assert where != 'folder' or (target.is_dir() and not any(target.iterdir()))


def test_cli_full_disk_is_one_line_and_keeps_the_old_file(capsys, tmp_path):
    """A write that runs out of room (here: the process's file-size limit, EFBIG, as on a full disk) keeps the old
    file and leaves no temp file."""
    import resource
    import signal
    out = tmp_path / 'g.json'
    load_genotype('darts_v1').save(out)
    old = out.read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (512, hard))
    try:
        code, _, err = _cli(capsys, 'genotype', 'darts_v2', '--to-json', str(out))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert code == 1 and err == f'entrannas genotype: error: cannot write {out}: File too large\n'
    assert out.read_bytes() == old and sorted(p.name for p in tmp_path.iterdir()) == ['g.json']


# ---- one resolution path -------------------------------------------------------------------------------------
def test_every_entry_point_resolves_alike(capsys, tmp_path):
    from entrannas_timm.models.genotype import resolve_genotype
    g = load_genotype('pc_darts_cifar')
    (tmp_path / 'g.json').write_text(g.to_json())
    (tmp_path / 'genotypes.py').write_text(ISSUE_TEXTS['pc_darts_cifar'] + '\n' + ISSUE_TEXTS['darts_v2'])
    forms = ['PC_DARTS_CIFAR', str(tmp_path / 'g.json'), ISSUE_TEXTS['pc_darts_cifar']]
    for form in forms:
        got = {resolve_genotype(form), Genotype.coerce(form), load_genotype(form)}
        code, out, _ = _cli(capsys, 'genotype', form, '--json')
        got.add(Genotype.from_dict(json.loads(out)))
        assert code == 0 and {(x.normal, x.reduce) for x in got} == {(g.normal, g.reduce)}, form
    py = str(tmp_path / 'genotypes.py')
    assert resolve_genotype(py, name='pc_darts_cifar').name == 'pc_darts_cifar'
    code, out, _ = _cli(capsys, 'genotype', py, '--name', 'PC_DARTS_cifar', '--json')
    assert json.loads(out)['name'] == 'PC_DARTS_cifar'
    assert resolve_genotype(g.to_dict(), name='mine').name == 'mine'
    with pytest.raises(GenotypeError, match='not found'):
        resolve_genotype(str(tmp_path / 'nope.json'))
    with pytest.raises(GenotypeError, match='no bundled genotype named'):
        resolve_genotype('x' * 100000)  # a name too long for the file system is still just an unknown name
