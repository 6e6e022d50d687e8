"""Shared argument checks, so every error reads the same way.

Messages follow one template: "`name` should be <rule>, but got name=<value>." plus
the fix where there is one. The exception type follows the cause: ``TypeError`` for
a wrong type, ``ValueError`` for a bad value.
"""

from __future__ import annotations

import math
import numbers
import os
import shlex
from collections.abc import Iterable
from typing import Any, Callable

import numpy as np
import torch

__all__ = [
    "check_bool",
    "check_bool_or_auto",
    "check_choice",
    "check_positive_int",
    "check_non_negative_int",
    "check_positive_float",
    "check_fraction",
    "check_folder",
    "check_writable_folder",
    "check_lam_range",
    "check_random_state",
    "seed_of",
    "optional",
    "resolve_device",
    "writable_folder",
]


def _fail(name: str, rule: str, value: Any, fix: str = "", exc: type = ValueError) -> None:
    message = f"`{name}` should be {rule}, but got {name}={value!r}."
    if fix:
        message += f" {fix}"
    raise exc(message)


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        _fail(name, "a bool", value, exc=TypeError)
    return value


def check_bool_or_auto(name: str, value: Any) -> bool | str:
    """``True``, ``False`` or ``'auto'`` (a choice the library makes when it knows more)."""
    if isinstance(value, str) and value != "auto":
        _fail(name, "True, False or 'auto'", value)
    if not isinstance(value, (bool, str)):
        _fail(name, "True, False or 'auto'", value, exc=TypeError)
    return value


def _is_int(value: Any) -> bool:
    # NOTE: bool is a subclass of int; ``k_neighbors=True`` is a bug, not 1.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_positive_int(name: str, value: Any) -> int:
    if not _is_int(value):
        _fail(name, "a positive integer", value, exc=TypeError)
    if value <= 0:
        _fail(name, "a positive integer", value)
    return int(value)


def check_non_negative_int(name: str, value: Any) -> int:
    if not _is_int(value):
        _fail(name, "a non-negative integer", value, exc=TypeError)
    if value < 0:
        _fail(name, "a non-negative integer", value)
    return int(value)


def check_positive_float(name: str, value: Any, *, allow_zero: bool = False) -> float:
    rule = "a non-negative number" if allow_zero else "a positive number"
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        _fail(name, rule, value, exc=TypeError)
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        _fail(name, rule, value)
    if value == 0 and not allow_zero:
        _fail(name, rule, value)
    return value


def check_fraction(name: str, value: Any) -> float:
    """A float in the half-open interval (0, 1]."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        _fail(name, "a number in (0, 1]", value, exc=TypeError)
    if not 0 < float(value) <= 1:
        _fail(name, "a number in (0, 1]", value)
    return float(value)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        _fail(name, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def check_random_state(name: str, value: Any) -> Any:
    """``None`` (fresh entropy), a non-negative integer seed or a numpy ``RandomState``
    (scikit-learn's three forms), returned as given; see ``seed_of``."""
    if value is None or isinstance(value, np.random.RandomState):
        return value
    if isinstance(value, (torch.Generator, np.random.Generator)):
        _fail(
            name,
            "None, an integer seed or a numpy RandomState",
            value,
            "Pass the seed itself.",
            exc=TypeError,
        )
    return check_non_negative_int(name, value)


def seed_of(name: str, random_state: Any) -> int | None:
    """The seed a ``random_state`` stands for, drawn when it is used (scikit-learn's rule).

    ``None`` stays ``None`` (fresh entropy), an integer is its own seed, and a numpy
    ``RandomState`` gives a seed drawn from it, so that it moves on as it does in
    scikit-learn: two fits with one ``RandomState`` object differ, and a ``RandomState``
    made anew with the same seed repeats them.

    Examples:
        >>> seed_of("random_state", 7), seed_of("random_state", None)
        (7, None)
        >>> a = seed_of("random_state", np.random.RandomState(0))
        >>> a == seed_of("random_state", np.random.RandomState(0))
        True
    """
    random_state = check_random_state(name, random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    return random_state


def resolve_device(device: Any) -> torch.device:
    """``None`` means CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"`device` should be None, a torch.device or a device string such as 'cpu' "
            f"or 'cuda:0', but got device={device!r}."
        ) from error


def optional(check: Callable) -> Callable:
    """``check`` that lets ``None`` pass."""
    return lambda name, value: None if value is None else check(name, value)


def check_lam_range(name: str, lam_range: Any) -> tuple[float, float]:
    """``(low, high)`` as two floats, finite and ``low < high``."""
    try:
        low, high = (float(v) for v in lam_range)
    except (TypeError, ValueError):
        low = high = float("nan")
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(
            f"`{name}` should be None or (low, high) with finite low < high, e.g. (0, 1), "
            f"but got {name}={lam_range!r}."
        )
    return low, high


def check_folder(name: str, value: Any, *, option: str | None = None) -> None:
    """``value`` is ``None`` or a path that is a folder or can be made one.

    Whether it can be written is not checked here: a complete cache is read from a
    read-only folder (see ``writable_folder``).

    Args:
        name: The Python argument, named in messages.
        value: The path.
        option: The command-line spelling (``'--out'``, ``'DIR'``) to name instead of
            ``name``; then ``None`` is refused too.

    Raises:
        TypeError: ``value`` is not a ``str`` or path.
        ValueError: ``value`` is ``''``.
        FileExistsError: ``value`` is a file.
        NotADirectoryError: ``value`` lies under a file.
    """
    if value is None and option is None:
        return
    arg, got, verb = _folder_words(name, value, option)
    if not isinstance(value, (str, os.PathLike)):
        rule = "a folder path" if option else "None or a folder path"
        raise TypeError(f"{arg} should be {rule}, but got {got}.")
    path = os.fspath(value)
    if path == "":
        raise ValueError(
            f"{arg} should be a folder path, but got {got}, the empty path. {verb} a folder "
            f"such as {'runs/deepsmote' if option else repr('runs/deepsmote')} (made when "
            "missing)."
        )
    if os.path.exists(path) and not os.path.isdir(path):
        raise FileExistsError(
            f"{arg} should be a folder, but got {got}, which is a file. {verb} a folder, or "
            "a path where one can be made."
        )
    blocker = _file_above(path)
    if blocker is not None:
        raise NotADirectoryError(
            f"{arg} should be a folder path, but got {got}, which lies under the file "
            f"{blocker!r}: no folder can be made there. {verb} a path outside that file."
        )


def writable_folder(path: str | os.PathLike) -> bool:
    """Whether this process may create files in the folder ``path`` (or, when it does
    not exist yet, make it in the nearest folder above that does).

    ``False`` on a read-only mount, and for a folder whose permissions keep this user out
    (root passes those unless its capability to override them is dropped).
    """
    folder = os.path.abspath(os.fspath(path))
    while not os.path.exists(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            return False
        folder = parent
    return os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)


def check_writable_folder(name: str, value: Any, *, option: str | None = None) -> None:
    """``check_folder``, and ``value`` can be written (made when missing).

    Raises:
        PermissionError: The folder (or the nearest existing one above it) is read-only
            for this process.
    """
    check_folder(name, value, option=option)
    if not writable_folder(value):
        arg, got, verb = _folder_words(name, value, option)
        raise PermissionError(
            f"{arg} should be a folder this process can write to, but got {got}, which is "
            f"not writable here (its permissions, or a read-only file system). {verb} a "
            "writable folder."
        )


def _folder_words(name: str, value: Any, option: str | None) -> tuple[str, str, str]:
    """(the argument, what was given, the fix's verb) in Python's words or, with
    ``option``, a shell's."""
    path = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
    if option is None:
        return f"`{name}`", f"{name}={value if path is None else path!r}", "Pass"
    return f"`{option}`", f"{option} {value if path is None else shlex.quote(path)}", "Choose"


def _file_above(path: str) -> str | None:
    """The file among the folders above ``path``, if one is in the way."""
    folder = os.path.dirname(os.path.abspath(path))
    while True:
        if os.path.exists(folder):
            return None if os.path.isdir(folder) else folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent
