"""Defaults for the command line from a TOML file.

Looked up at ``--config PATH``, else ``$P3M_LIVE_CONFIG``, else
``$XDG_CONFIG_HOME/p3m-live/config.toml`` (``~/.config/p3m-live/config.toml``).
Keys are the long option names (``background = "beach.jpg"``, ``virtual-cam =
true``, ``crf = 20``); the command line wins over the file.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import P3MError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def default_config_path() -> Path:
    if env := os.environ.get("P3M_LIVE_CONFIG"):
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "p3m-live" / "config.toml"


def load_config(path: Path, parser: argparse.ArgumentParser, required: bool = False) -> dict:
    """Option defaults from ``path``, checked against ``parser``'s options."""
    if not path.is_file():
        if required:
            raise P3MError(f"config file {path} not found")
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise P3MError(f"config file {path} is not valid TOML ({e})") from e
    dests = {a.dest: a for a in parser._actions if a.option_strings}
    defaults = {}
    for key, value in data.items():
        dest = key.replace("-", "_")
        action = dests.get(dest)
        if action is None or dest in ("config", "help", "version"):
            raise P3MError(f"config file {path}: unknown option {key!r}")
        if action.nargs == "?" and isinstance(value, bool):  # virtual-cam = true: the flag alone
            value = action.const if value else None
        elif action.nargs == 0:  # store_true flags
            if not isinstance(value, bool):
                raise P3MError(f"config file {path}: {key!r} must be true or false")
        else:
            value = _as_text(value, isinstance(action, argparse._AppendAction), f"config file {path}: {key!r}")
        if isinstance(action, argparse._AppendAction) and not isinstance(value, list):
            value = [value]
        if action.type is not None and value is not None and not isinstance(value, bool | list):
            try:
                value = action.type(str(value))
            except (ValueError, argparse.ArgumentTypeError, P3MError) as e:
                raise P3MError(f"config file {path}: bad value for {key!r} ({e})") from e
        if action.choices is not None and value not in action.choices:  # (choices are never lists here)
            raise P3MError(f"config file {path}: {key!r} must be one of {', '.join(map(str, action.choices))}")
        defaults[dest] = value
    return defaults


def _as_text(value: object, many: bool, where: str) -> str | list[str]:
    """An option's TOML value as the command line gives it: a string, or a number as its
    text (``webcam = 1`` is ``--webcam 1``); a list of them for an option that repeats."""
    if many and isinstance(value, list):
        return [_as_text(item, False, where) for item in value]  # type: ignore[misc]
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    kinds = {bool: "true or false", list: "a list", dict: "a table"}
    kind = next((name for t, name in kinds.items() if isinstance(value, t)), "a date or time")
    raise P3MError(f"{where} takes a string or a number{' (or a list of them)' if many else ''}, not {kind}")
