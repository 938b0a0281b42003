"""Naming the ID column: a label that is not one column gets a message that says what to name instead."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

import leadlex_nb  # also registers .leadlex
from leadlex_nb.errors import ColumnNotFoundError, ConfigurationError

IDS = [str(uuid.UUID(int=i + 1)) for i in range(3)]


def refused(frame: pd.DataFrame, column: object) -> str:
    with pytest.raises(ConfigurationError) as caught:  # before any request: no key or server needed
        frame.leadlex.bulk_delete(column, api_key="lx_column_test", base_url="http://127.0.0.1:9")
    return str(caught.value)


def test_naming_the_index_says_it_is_the_index_and_how_to_use_it() -> None:
    frame = pd.DataFrame({"name": list("abc")}, index=pd.Index(IDS, name="contact_id"))
    message = refused(frame, "contact_id")
    assert "is the name of the index, not a column" in message
    assert "df.reset_index().leadlex.bulk_delete('contact_id')" in message


def test_a_missing_column_lists_the_columns() -> None:
    message = refused(pd.DataFrame({"contact_id": IDS}), "id")
    assert "its columns are ['contact_id']" in message


def test_a_partial_label_of_multi_level_columns_asks_for_the_full_label() -> None:
    frame = pd.DataFrame({("ids", "contact_id"): IDS, ("ids", "name"): list("abc"), ("meta", "n"): [1, 2, 3]})
    for partial in ("ids", ("ids",), "contact_id"):
        message = refused(frame, partial)
        assert "columns have 2 levels" in message and "('ids', 'contact_id')" in message
        assert "appears" not in message  # not mistaken for a duplicated column
    with pytest.raises(ColumnNotFoundError):
        frame.leadlex.bulk_delete(("ids", "nope"), api_key="lx_column_test", base_url="http://127.0.0.1:9")


def test_the_full_label_of_multi_level_columns_is_one_column() -> None:
    frame = pd.DataFrame({("ids", "contact_id"): IDS, ("ids", "name"): list("abc")})
    with pytest.raises(leadlex_nb.ServerUnreachableError) as stopped:  # the column was read and sent
        frame.leadlex.bulk_delete(("ids", "contact_id"), api_key="lx_column_test", base_url="http://127.0.0.1:9",
                                  dry_run=True, journal=False, progress=False, verbose=False,
                                  retry=leadlex_nb.RetryPolicy(max_attempts=1))
    result = stopped.value.result
    assert result is not None and result["contact_id"].tolist() == IDS


def test_an_unhashable_label_is_refused_clearly() -> None:
    assert "name one column by its label, not a list" in refused(pd.DataFrame({"contact_id": IDS}), ["contact_id"])
