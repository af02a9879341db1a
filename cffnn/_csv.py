"""Reading a user's CSV file for the command line: a header row, numeric feature columns.

Only the standard library's csv module and NumPy: pandas is not a dependency.
"""
import csv

import numpy as np


class DataFileError(ValueError):
    """A CSV file the command line cannot use; the message says what and where."""


def read_csv(path):
    """(column names, rows as lists of strings) of a CSV file with a header row."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            sample = file.read(65536)
            file.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            rows = [row for row in csv.reader(file, dialect) if row]
    except UnicodeDecodeError as error:
        raise DataFileError(f"{path}: not a text CSV file ({error.reason})") from None
    except csv.Error as error:
        raise DataFileError(f"{path}: {error}") from None
    if len(rows) < 2:
        raise DataFileError(f"{path}: needs a header row and at least one data row")
    header = [name.strip() for name in rows[0]]
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataFileError(f"{path}, line {line}: {len(row)} fields, but the header "
                                f"has {len(header)}")
    return header, rows[1:]


def numeric_matrix(path, header, rows, columns):
    """The named columns as a float64 matrix (n_rows, len(columns))."""
    index = {name: k for k, name in enumerate(header)}
    missing = [name for name in columns if name not in index]
    if missing:
        raise DataFileError(f"{path}: no column named {', '.join(map(repr, missing))}; "
                            f"the columns are {', '.join(header)}")
    out = np.empty((len(rows), len(columns)))
    for j, name in enumerate(columns):
        k = index[name]
        for i, row in enumerate(rows):
            if not row[k].strip():
                raise DataFileError(f"{path}, line {i + 2}, column {name!r}: missing value")
            try:
                out[i, j] = float(row[k])
            except ValueError:
                raise DataFileError(f"{path}, line {i + 2}, column {name!r}: {row[k]!r} is "
                                    f"not a number (feature columns must be numeric)") from None
    if not np.isfinite(out).all():
        i, j = np.argwhere(~np.isfinite(out))[0]
        raise DataFileError(f"{path}, line {i + 2}, column {columns[j]!r}: missing or "
                            f"infinite value")
    return out


def target_column(path, header, rows, name):
    """The target column as strings, (n_rows,)."""
    if name not in header:
        raise DataFileError(f"{path}: no column named {name!r}; the columns are "
                            f"{', '.join(header)}")
    k = header.index(name)
    values = np.array([row[k].strip() for row in rows], dtype=object)
    if any(value == "" for value in values):
        raise DataFileError(f"{path}: the target column {name!r} has empty values")
    return values


def as_task(values, task):
    """(y, task): the target as numbers for regression or labels for classification.

    task "auto": regression when every value is a number and they are not all whole
    numbers with at most 20 distinct values; classification otherwise. Whole-number
    labels become ints, other labels stay strings.
    """
    try:
        numbers = np.array([float(value) for value in values])
    except ValueError:
        numbers = None
    if task == "auto":
        whole = numbers is not None and np.all(numbers == np.round(numbers))
        task = ("regression" if numbers is not None and not (
            whole and np.unique(numbers).shape[0] <= 20) else "classification")
    if task == "regression":
        if numbers is None or not np.isfinite(numbers).all():
            raise DataFileError("regression needs a numeric, finite target column")
        return numbers, task
    if numbers is not None and np.all(numbers == np.round(numbers)):
        return numbers.astype(np.int64), task
    return values.astype(str), task
