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
from typing import Any, TypeVar, cast, overload

T = TypeVar("T")
C = TypeVar("C", bound=str)
Check = Callable[[T], "str | None"]


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
    """One TOML table being read; records problems against dotted key names.

    Every getter returns its declared type: the value when it is usable, otherwise (after
    recording the problem) the default, or for a required key a placeholder of the type that
    is never used, because ``load`` raises once any problem is recorded. ``check`` functions
    (``value -> problem or None``, like ``contract.secret_problem``) run on well-typed values
    only, so one bad key yields one problem line.

    Defaults are the config dataclass's own (``s.number("timeout_s", RelayConfig.timeout_s)``):
    a dataclass keeps a field's default as a class attribute, so each default is written once.
    """

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

    def waive_unknown_keys(self) -> None:
        """Report no unknown key in this table: which keys exist depends on a key that is itself
        invalid (an account's ``kind``), so judging the rest would only add noise."""
        self._read.update(self._data)

    def _get(self, name: str, default: Any, kind: type | tuple[type, ...], label: str) -> Any:
        """The raw value if present and of ``kind``, else ``default`` (a problem recorded)."""
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

    def _checked(
        self, name: str, default: Any, placeholder: T, kind: type | tuple[type, ...], label: str, check: Check[T] | None
    ) -> T:
        """The value of a present, well-typed key that passes ``check``; else the default (the
        placeholder for a required key). Defaults are never judged: they are valid by design."""
        fallback = cast(T, placeholder if default is REQUIRED else default)
        if name not in self._data:
            self._get(name, default, kind, label)
            return fallback
        value = self._get(name, REQUIRED, kind, label)
        if value is REQUIRED:
            return fallback
        problem = check(value) if check is not None else None
        if problem:
            self.problem(name, problem)
            return fallback
        return cast(T, value)

    def failed(self, name: str) -> bool:
        """Whether a problem is already recorded for ``name``, so that a rule depending on it
        ("required when mode = push") does not add a second line about the same key."""
        prefix = self.key(name) + ":"
        return any(p.startswith(prefix) for p in self.problems)

    def value(self, name: str, kind: type | tuple[type, ...], label: str) -> Any:
        """A value of one of several types (``label`` names them), or None when absent or
        another type; for keys whose shape needs its own reading (a preset name or a table)."""
        return self._get(name, None, kind, label)

    def text(self, name: str, default: str = REQUIRED, *, check: Check[str] | None = None) -> str:
        return self._checked(name, default, "", str, "a string", check)

    @overload
    def choice(self, name: str, choices: tuple[C, ...]) -> C | None: ...
    @overload
    def choice(self, name: str, choices: tuple[C, ...], default: C) -> C: ...
    def choice(self, name: str, choices: tuple[C, ...], default: Any = REQUIRED) -> C | None:
        """One of ``choices`` (typed as they are); a required key that is not one gives None."""
        value = self._get(name, default, str, "a string")
        match = next((c for c in choices if c == value), None)
        if match is None and isinstance(value, str) and value is not default:
            self.problem(name, f"must be one of {', '.join(choices)} (got {value!r})")
        if match is not None:
            return match
        return None if default is REQUIRED else cast(C, default)

    def boolean(self, name: str, default: bool) -> bool:
        return bool(self._get(name, default, bool, "true or false"))

    def integer(self, name: str, default: int = REQUIRED, *, min: int | None = None, max: int | None = None) -> int:
        return self._checked(name, default, 0, int, "an integer", _bounds(min, max))

    def number(
        self, name: str, default: float = REQUIRED, *, min: float | None = None, max: float | None = None
    ) -> float:
        return float(self._checked(name, default, 0.0, (int, float), "a number", _bounds(min, max)))

    def texts(self, name: str, default: list[str] = REQUIRED) -> list[str]:
        return self._checked(name, default, [], list, "a list of strings", _all_strings)

    def path(self, name: str, default: Path = REQUIRED) -> Path:
        """A filesystem path; relative paths resolve against the config file's folder."""
        value = self._get(name, default, str, "a string")
        if isinstance(value, str):
            return self._base_dir / value
        return Path() if default is REQUIRED else default

    def secret(self, name: str, *, check: Check[str] | None = None) -> Secret:
        """A required secret: a literal string, ``{ env = "VAR" }`` or ``{ file = "path" }``;
        empty is refused, ``check`` judges the revealed value."""
        found = self.optional_secret(name, required=True, check=check)
        return found if found is not None else Secret("invalid")

    def optional_secret(
        self, name: str, *, required: bool = False, check: Check[str] | None = None
    ) -> Secret | None:
        """Like :meth:`secret`, None when the key is absent or unusable."""
        self._read.add(name)
        if name not in self._data:
            if required:
                self.problem(name, "is required")
            return None
        return self._resolve_secret(name, self._data[name], check)

    def secret_list(self, name: str, *, check: Check[str] | None = None) -> list[Secret]:
        """A required non-empty list of secrets; each one judged as :meth:`secret` does."""
        self._read.add(name)
        if name not in self._data:
            self.problem(name, "is required")
            return []
        raw = self._data[name]
        if not isinstance(raw, list) or not raw:
            self.problem(name, "must be a non-empty list of secrets")
            return []
        resolved = [self._resolve_secret(f"{name}[{i}]", item, check) for i, item in enumerate(raw)]
        return [s for s in resolved if s is not None]

    def _resolve_secret(self, name: str, raw: Any, check: Check[str] | None) -> Secret | None:
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
        problem = "is empty" if not value else check(value) if check is not None else None
        if problem:
            self.problem(name, problem)
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


def _bounds(lo: float | None, hi: float | None) -> Check[float]:
    def problem(value: float) -> str | None:
        if lo is not None and value < lo:
            return f"must be at least {lo}"
        if hi is not None and value > hi:
            return f"must be at most {hi}"
        return None

    return problem


def _all_strings(values: list[Any]) -> str | None:
    return None if all(isinstance(v, str) for v in values) else "must be a list of strings"


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


def parse_listen(section: Section, name: str, default: str = REQUIRED) -> tuple[str, int]:
    """``"host:port"`` (IPv6 as ``"[::1]:8080"``); problems are recorded, not raised."""
    value = section.text(name, default, check=_listen_problem)
    return _split_listen(value) or ("127.0.0.1", 0)


def _split_listen(value: str) -> tuple[str, int] | None:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        return None
    return host, int(port)


def _listen_problem(value: str) -> str | None:
    return None if _split_listen(value) else f"must be host:port (got {value!r})"


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(section: Section, name: str, default: list[str] = REQUIRED) -> list[Network]:
    values = section.texts(name, default)
    networks: list[Network] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            section.problem(name, f"{value!r} is not an IP network")
    return networks
