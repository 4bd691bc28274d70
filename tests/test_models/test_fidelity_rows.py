"""Every row of docs/fidelity.md holds: our default gives the release's
value, or the named option does (tests/fidelity_rows.py prints the table)."""
import pytest

from tests.fidelity_rows import all_rows

ROWS = all_rows()


@pytest.mark.parametrize('row', ROWS, ids=[r.detail for r in ROWS])
def test_fidelity_row_holds(row):
    assert row.holds, row
    assert row.status == 'equal' or row.status.startswith(
        ('equal (', 'option: ', 'documented: '))
