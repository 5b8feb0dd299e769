"""Strict TOML configuration reading shared by both tiers.

Every key a tier reads goes through a :class:`Section`, which remembers what was read, so that
whatever is left over is reported as an unknown key (a typo must not pass silently). Problems
are collected, not raised one by one, so ``--check`` can print every problem at once.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` holds one readable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class Secret:
    """A secret value whose repr, str and format never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself; call it only where the value leaves for its one legitimate use."""
        return self._value

    def matches(self, candidate: str) -> bool:
        """Constant-time comparison against a caller-supplied value.

        A caller's value may hold a lone surrogate (JSON's ``"\\ud800"``), which plain UTF-8
        cannot encode: ``surrogatepass`` turns it into bytes no configured secret has, so it is a
        mismatch like any other, never an exception (finding F8, docs/SECURITY.md).
        """
        return hmac.compare_digest(self._value.encode("utf-8"), candidate.encode("utf-8", "surrogatepass"))

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and self.matches(other._value)

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))


class _Missing:
    def __repr__(self) -> str:
        return "<required>"


REQUIRED: Any = _Missing()


class Section:
    """One TOML table being read; records problems against dotted key names."""

    def __init__(self, data: dict[str, Any], path: str, base_dir: Path, problems: list[str]) -> None:
        self._data = data
        self._path = path
        self._base_dir = base_dir
        self.problems = problems
        self._read: set[str] = set()
        self._children: list[Section] = []

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    def key(self, name: str) -> str:
        return f"{self._path}.{name}" if self._path else name

    def has(self, name: str) -> bool:
        return name in self._data

    def problem(self, name: str, reason: str) -> None:
        self.problems.append(f"{self.key(name)}: {reason}")

    def _get(self, name: str, default: Any, kind: type | tuple[type, ...], label: str) -> Any:
        self._read.add(name)
        if name not in self._data:
            if default is REQUIRED:
                self.problem(name, "is required")
            return default
        value = self._data[name]
        if isinstance(value, bool) and kind is not bool:
            self.problem(name, f"must be {label}, not a boolean")
            return default
        if not isinstance(value, kind):
            self.problem(name, f"must be {label}")
            return default
        return value

    def text(self, name: str, default: Any = REQUIRED, *, choices: tuple[str, ...] = ()) -> Any:
        value = self._get(name, default, str, "a string")
        if choices and isinstance(value, str) and value not in choices:
            self.problem(name, f"must be one of {', '.join(choices)} (got {value!r})")
            return default
        return value

    def boolean(self, name: str, default: Any = REQUIRED) -> Any:
        return self._get(name, default, bool, "true or false")

    def integer(self, name: str, default: Any = REQUIRED, *, min: int | None = None, max: int | None = None) -> Any:
        value = self._get(name, default, int, "an integer")
        return self._bounded(name, value, default, min, max)

    def number(self, name: str, default: Any = REQUIRED, *, min: float | None = None, max: float | None = None) -> Any:
        value = self._get(name, default, (int, float), "a number")
        value = float(value) if isinstance(value, int | float) else value
        return self._bounded(name, value, default, min, max)

    def _bounded(self, name: str, value: Any, default: Any, lo: Any, hi: Any) -> Any:
        if not isinstance(value, int | float) or value is default:
            return value
        if lo is not None and value < lo:
            self.problem(name, f"must be at least {lo}")
            return default
        if hi is not None and value > hi:
            self.problem(name, f"must be at most {hi}")
            return default
        return value

    def texts(self, name: str, default: Any = REQUIRED) -> Any:
        value = self._get(name, default, list, "a list of strings")
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            self.problem(name, "must be a list of strings")
            return default
        return value

    def path(self, name: str, default: Any = REQUIRED) -> Any:
        """A filesystem path; relative paths resolve against the config file's folder."""
        value = self.text(name, default)
        return self._base_dir / value if isinstance(value, str) else value

    def secret(self, name: str, default: Any = REQUIRED) -> Any:
        """A literal string, ``{ env = "VAR" }`` or ``{ file = "path" }``; empty is refused."""
        self._read.add(name)
        if name not in self._data:
            if default is REQUIRED:
                self.problem(name, "is required")
            return default
        return self._resolve_secret(name, self._data[name])

    def secret_list(self, name: str, default: Any = REQUIRED) -> Any:
        self._read.add(name)
        if name not in self._data:
            if default is REQUIRED:
                self.problem(name, "is required")
            return default
        raw = self._data[name]
        if not isinstance(raw, list) or not raw:
            self.problem(name, "must be a non-empty list of secrets")
            return default
        resolved = [self._resolve_secret(f"{name}[{i}]", item) for i, item in enumerate(raw)]
        return [s for s in resolved if s is not None]

    def _resolve_secret(self, name: str, raw: Any) -> Secret | None:
        if isinstance(raw, str):
            value = raw
        elif isinstance(raw, dict) and set(raw) == {"env"} and isinstance(raw["env"], str):
            env_value = os.environ.get(raw["env"])
            if env_value is None:
                self.problem(name, f"environment variable {raw['env']} is not set")
                return None
            value = env_value
        elif isinstance(raw, dict) and set(raw) == {"file"} and isinstance(raw["file"], str):
            file_path = self._base_dir / raw["file"]
            try:
                value = file_path.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                self.problem(name, f"cannot read secret file {file_path}: {exc.strerror}")
                return None
            except UnicodeDecodeError:  # the bytes are the secret: say where, never what
                self.problem(name, f"secret file {file_path} is not UTF-8 text")
                return None
        else:
            self.problem(name, 'must be a string, { env = "VAR" } or { file = "path" }')
            return None
        if not value:
            self.problem(name, "is empty")
            return None
        return Secret(value)

    def table(self, name: str, *, required: bool = False) -> Section:
        raw = self._get(name, REQUIRED if required else {}, dict, "a table")
        child = Section(raw if isinstance(raw, dict) else {}, self.key(name), self._base_dir, self.problems)
        self._children.append(child)
        return child

    def tables(self, name: str, *, required: bool = False) -> list[Section]:
        raw = self._get(name, REQUIRED if required else [], list, "an array of tables ([[...]])")
        if not isinstance(raw, list):
            return []
        sections = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                self.problems.append(f"{self.key(name)}[{i}]: must be a table")
                continue
            sections.append(Section(item, f"{self.key(name)}[{i}]", self._base_dir, self.problems))
        self._children.extend(sections)
        return sections

    def check_known(self) -> None:
        """Report every key present in this table or a table read from it that nobody read."""
        for name in sorted(set(self._data) - self._read):
            self.problem(name, "unknown key")
        for child in self._children:
            child.check_known()


def secret_file_warnings(path: Path) -> list[str]:
    """One line per ``{ file = "..." }`` secret that group or others may read (or cannot be checked).

    Not a problem (the config works), but a secret readable by every account on the host is not
    secret: both tiers print these in ``--check`` and log them at start. Relative paths resolve
    as :meth:`Section.secret` resolves them; a file that cannot be read is already a problem.
    """
    try:
        data, base_dir = read_toml(Path(path))
    except ConfigError:
        return []
    warnings = []
    for key, file_name in _secret_files(data, ""):
        file_path = base_dir / file_name
        try:
            mode = file_path.stat().st_mode
        except OSError:
            continue
        if mode & 0o077:
            warnings.append(
                f"{key}: secret file {file_path} is readable by group or others (mode {mode & 0o777:04o}); "
                "make it 0600 or 0400"
            )
    return warnings


def _secret_files(node: Any, key: str) -> list[tuple[str, str]]:
    """(dotted key, path) of every ``{ file = "..." }`` table anywhere in the parsed TOML."""
    if isinstance(node, dict):
        if set(node) == {"file"} and isinstance(node["file"], str):
            return [(key, node["file"])]
        return [pair for name, value in node.items() for pair in _secret_files(value, f"{key}.{name}" if key else name)]
    if isinstance(node, list):
        return [pair for i, value in enumerate(node) for pair in _secret_files(value, f"{key}[{i}]")]
    return []


_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def mask_url(value: str) -> str:
    """A configured URL fit for an error line: userinfo, query and fragment become ``***``.

    Config errors about a URL-valued key quote it so the operator sees what was read, but a URL
    may carry a password (``https://user:pw@host``) or a token in its query; those never print.
    Works on any string, URL-shaped or not, since the value being reported may be malformed.
    """
    cut = min((i for i in (value.find("?"), value.find("#")) if i >= 0), default=len(value))
    base, rest = value[:cut], value[cut:]
    if "@" in base:
        scheme = _URL_SCHEME.match(base)
        start = scheme.end() if scheme else 0
        base = base[:start] + "***@" + base[base.rindex("@") + 1 :]
    return base + (rest[0] + "***" if rest else "")


def read_toml(path: Path) -> tuple[dict[str, Any], Path]:
    """Parse the file; unreadable or invalid TOML becomes a ConfigError with one line."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: invalid TOML: {exc}"]) from None
    return data, path.resolve().parent


def load(path: Path, build: Callable[[Section], T]) -> T:
    """Read ``path`` and build a config object with ``build``; raise ConfigError listing problems."""
    data, base_dir = read_toml(Path(path))
    problems: list[str] = []
    root = Section(data, "", base_dir, problems)
    result = build(root)
    root.check_known()
    if problems:
        raise ConfigError(problems)
    return result


def parse_listen(section: Section, name: str, default: Any = REQUIRED) -> tuple[str, int]:
    """``"host:port"`` (IPv6 as ``"[::1]:8080"``); problems are recorded, not raised."""
    value = section.text(name, default)
    if not isinstance(value, str):
        return ("127.0.0.1", 0)
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        section.problem(name, f"must be host:port (got {value!r})")
        return ("127.0.0.1", 0)
    return host, int(port)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(section: Section, name: str, default: Any = REQUIRED) -> list[Network]:
    values = section.texts(name, default)
    networks: list[Network] = []
    for value in values if isinstance(values, list) else []:
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            section.problem(name, f"{value!r} is not an IP network")
    return networks
