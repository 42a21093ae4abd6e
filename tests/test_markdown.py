"""Generated tables spliced into a hand-written document: each replaces exactly the table its header names."""
import pytest

from entrannas_timm.reports.markdown import splice_tables

DOC = """# Results

| a | b |
|---|---|
| 1 | 2 |
| 3 | 4 |

Prose about the first table.

| c |
|---|
| old |
"""


def test_a_table_with_the_same_header_is_replaced_and_everything_else_kept():
    out = splice_tables(DOC, '| a | b |\n|---|---|\n| 5 | 6 |\n')
    assert out == DOC.replace('| 1 | 2 |\n| 3 | 4 |\n', '| 5 | 6 |\n')
    # several generated tables at once, each to its own place; a table may grow
    out = splice_tables(DOC, '| c |\n|---|\n| new |\n| newer |\n\n| a | b |\n|---|---|\n')
    assert '| new |\n| newer |\n' in out and '| 1 | 2 |' not in out and 'Prose about the first table.' in out
    assert splice_tables(out, '| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n\n| c |\n|---|\n| old |') == DOC


@pytest.mark.parametrize('doc, count', [(DOC, 0), (DOC + '\n| x |\n|---|\n\n| x |\n|---|\n', 2)])
def test_a_header_not_in_the_document_once_is_an_error_that_names_it(doc, count):
    with pytest.raises(ValueError, match=rf"table header '\| x \|': found {count} times"):
        splice_tables(doc, '| x |\n|---|\n| 1 |\n')


def test_a_file_is_rewritten_in_place_and_left_as_it_was_on_an_error(tmp_path):
    from entrannas_timm.reports.markdown import splice_tables_into
    doc = tmp_path / 'README.md'
    doc.write_text(DOC, encoding='utf-8')
    assert splice_tables_into(doc, '| c |\n|---|\n| new |\n') == doc
    assert doc.read_text(encoding='utf-8') == DOC.replace('| old |', '| new |')
    with pytest.raises(ValueError, match='found 0 times'):
        splice_tables_into(doc, '| x |\n|---|\n')
    assert doc.read_text(encoding='utf-8') == DOC.replace('| old |', '| new |')
