"""The command line's files: reading a column of IDs from CSV or Parquet, writing the result.

Every failure is a :class:`CliError` with the usage exit code, raised before any request goes out
where that is possible (an ``--out`` that cannot be written is found before the deletion).
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    import pandas as pd

EXIT_OK = 0
EXIT_UNSETTLED = 1
EXIT_USAGE = 2
EXIT_CONFIGURATION = 3
EXIT_API_STOP = 4
EXIT_JOURNAL = 5
EXIT_DECLINED = 6
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

PARQUET_SUFFIXES = (".parquet", ".pq")
PYARROW_HINT = "Parquet needs pyarrow: pip install 'leadlex-nb[parquet]' (or pyarrow)"


class CliError(Exception):
    """A failure the command line reports as one line with its own exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def usage_error(message: str) -> NoReturn:
    raise CliError(message, EXIT_USAGE)


def one_line(error: object) -> str:
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in PARQUET_SUFFIXES


def _require_pyarrow() -> None:
    if importlib.util.find_spec("pyarrow") is None:
        usage_error(PYARROW_HINT)


def read_table(path: Path, column: str) -> pd.DataFrame:
    """The input file as a frame with ``column``; any failure is a one-line usage error."""
    import pandas as pd

    from leadlex_nb.errors import ColumnNotFoundError

    if not path.exists():
        usage_error(f"no such file: {path}")
    if path.is_dir():
        usage_error(f"{path} is a directory, not a CSV or Parquet file")
    try:
        if _is_parquet(path):
            _require_pyarrow()
            parquet = importlib.import_module("pyarrow.parquet")  # an optional extra, without type stubs
            names = list(parquet.read_schema(path).names)
            if column not in names:
                raise ColumnNotFoundError(f"column {column!r} is not in {path}; its columns are {names[:20]!r} "
                                          "(name the column of contact IDs with --column)")
            frame = pd.read_parquet(path, columns=[column])
        else:
            # IDs are read as text: never let pandas turn them into numbers or dates. "utf-8-sig"
            # also reads the byte-order mark that spreadsheet programs put before the header.
            frame = pd.read_csv(path, dtype={column: "string"}, keep_default_na=False, na_values=[""],
                                encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        byte = error.object[error.start]
        usage_error(f"cannot read {path}: it is not UTF-8 text (byte 0x{byte:02x}: {error.reason}); "
                    "save it as UTF-8 CSV, or as Parquet")
    except pd.errors.EmptyDataError:
        usage_error(f"{path} is empty")
    except OSError as error:
        usage_error(f"cannot read {path}: {error.strerror or error}")
    except ColumnNotFoundError:
        raise
    except (ValueError, ImportError) as error:  # pandas' ParserError, pyarrow's ArrowInvalid (not Parquet)
        usage_error(f"cannot read {path} as {'Parquet' if _is_parquet(path) else 'CSV'}: {one_line(error)}")
    if column not in frame.columns:
        raise ColumnNotFoundError(f"column {column!r} is not in {path}; its columns are {list(frame.columns)[:20]!r} "
                                  "(name the column of contact IDs with --column)")
    return frame


def check_out(out: Path | None, source: Path | None) -> None:
    """Refuse an ``--out`` that cannot be written before any request goes out, not after the deletion."""
    if out is None:
        return
    if _is_parquet(out):
        _require_pyarrow()
    if source is not None and out.exists() and source.exists() and out.samefile(source):
        usage_error(f"--out {out} is the input file; writing the result there would overwrite the IDs")
    if out.is_dir():
        usage_error(f"--out {out} is a directory; name a file")
    existed = out.exists()
    try:
        with open(out, "ab"):
            pass
    except OSError as error:
        usage_error(f"cannot write --out {out}: {error.strerror or error}")
    if not existed:
        out.unlink()


def write_result(result: pd.DataFrame, out: Path, *, with_index: bool = True) -> None:
    """``with_index``: a delete's result keeps its input's index; a restore's has none worth writing."""
    if _is_parquet(out):
        # Raw values of invalid rows may be of any type (a Parquet column cannot mix them): as text.
        frame = result.assign(contact_id=result["contact_id"].astype("string"))
        frame.attrs = {}  # the run's report is on stderr; Parquet metadata would need it as JSON
        frame.to_parquet(out, index=with_index)
    else:
        result.to_csv(out, index=with_index)
