"""A real nginx for the end-to-end tests, configured from the repository's deploy/nginx files.

Each instance lives in its own prefix directory laid out like /etc/nginx: ``nginx.conf``,
``snippets/`` (a symlink to deploy/nginx/snippets, so the tests run the production rules, not a
copy) and ``wechat-ips.conf``. Every config is checked with ``nginx -t`` before it is started; an
invalid one fails the test with nginx's own words.

    with start_nginx(tmp_path, free_port(), upstream.port) as nginx:
        await session.get(f"{nginx.url}/wechat/main/callback?...")

or, in a test, the ``nginx_factory`` fixture (stopped at teardown):

    nginx = nginx_factory(upstream_port=gateway.port, whitelist=["127.0.0.1"])

Tests skip only when no nginx binary exists; CI installs it (.ci/run).
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

DEPLOY_NGINX = Path(__file__).resolve().parents[2] / "deploy" / "nginx"
LOOPBACK_TEMPLATE = DEPLOY_NGINX / "wechat-gateway.loopback.conf.template"
DMZ_SITE = DEPLOY_NGINX / "wechat-gateway.conf"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0

# WeChat's addresses for wechat-ips.conf: None (the shipped file), a ready file, or addresses.
Whitelist = Sequence[str] | Path | None


def nginx_binary() -> str | None:
    """The nginx executable; Debian puts it in /usr/sbin, which is not on every user's PATH."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def require_nginx() -> str:
    """The nginx executable, or skip the calling test when nginx is not installed at all."""
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed (CI installs it: apt-get install nginx)")
    return binary


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class NginxProcess:
    """A running nginx: where it listens and where its files are."""

    prefix: Path
    conf: Path
    port: int
    scheme: str
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.prefix / "logs" / "access.log"

    @property
    def error_log(self) -> Path:
        return self.prefix / "logs" / "error.log"

    def read_access_log(self, min_lines: int = 0, timeout_s: float = 5.0) -> str:
        """The access log, once it has at least ``min_lines`` lines.

        nginx writes a request's line after the response has gone out, so a client that has just
        read its answer may look before the line is there; ask for the lines you expect.
        """
        deadline = time.monotonic() + timeout_s
        text = _read(self.access_log)
        while text.count("\n") < min_lines and time.monotonic() < deadline:
            time.sleep(0.01)
            text = _read(self.access_log)
        return text

    def read_error_log(self) -> str:
        return _read(self.error_log)


# ---------------------------------------------------------------- rendering


def render_loopback(
    prefix: Path,
    listen_port: int,
    upstream_port: int | Sequence[int],
    *,
    whitelist: Whitelist = None,
    real_ip_from: Sequence[str] = (),
    proxy_timeout_s: float | None = None,
    legacy: bool = False,
) -> Path:
    """Write the loopback nginx.conf (and its prefix) from the repository's template.

    ``upstream_port``: the gateway's port, or several ports for a group of gateway replicas.
    ``whitelist``: addresses treated as WeChat's, or a ready wechat-ips.conf (None: the shipped one).
    ``real_ip_from``: peers trusted to name the client in X-Forwarded-For, like a load balancer.
    ``proxy_timeout_s``: replaces wechat-timeouts.conf's 5 s send/read timeouts, so a test of the
    timeout takes a second instead of five. ``legacy``: also serve the BlueKing legacy path.
    """
    _prepare_prefix(prefix, whitelist)
    values = {
        "PREFIX": str(prefix),
        "USER": _user_directive(),
        "LISTEN_PORT": str(listen_port),
        "UPSTREAM_SERVERS": _upstream_servers(upstream_port),
        "REAL_IP": _real_ip_block(real_ip_from),
        "TIMEOUTS": _timeouts_block(proxy_timeout_s),
        "LEGACY": "        include snippets/wechat-legacy.conf;" if legacy else "",
    }
    text = LOOPBACK_TEMPLATE.read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    unfilled = sorted(set(re.findall(r"@[A-Z_]+@", text)) - {"@NAME@"})
    if unfilled:
        pytest.fail(f"{LOOPBACK_TEMPLATE.name}: the harness does not fill {', '.join(unfilled)}")
    conf = prefix / "nginx.conf"
    conf.write_text(text, encoding="utf-8")
    return conf


def render_dmz_site(
    prefix: Path,
    listen_port: int,
    upstream_port: int,
    cert: Path,
    key: Path,
    *,
    whitelist: Whitelist = None,
) -> Path:
    """Write an nginx.conf that includes deploy/nginx/wechat-gateway.conf itself.

    Only host specifics are substituted (certificate, log directory, listen address, upstream
    port); each must be found exactly once, so a change to the production file that this harness
    no longer understands fails loudly instead of testing something else.
    """
    _prepare_prefix(prefix, whitelist)
    substitutions = {
        "/etc/nginx/tls/wechat-gateway.crt": str(cert),
        "/etc/nginx/tls/wechat-gateway.key": str(key),
        "/var/log/nginx/wechat-gateway.access.log": str(prefix / "logs" / "access.log"),
        "/var/log/nginx/wechat-gateway.error.log": str(prefix / "logs" / "error.log"),
        "    listen 443 ssl;\n": f"    listen 127.0.0.1:{listen_port} ssl;\n",
        "    listen [::]:443 ssl;\n": "",
        "server 127.0.0.1:8080;": f"server 127.0.0.1:{upstream_port};",
    }
    site = DMZ_SITE.read_text(encoding="utf-8")
    for old, new in substitutions.items():
        if site.count(old) != 1:
            pytest.fail(f"{DMZ_SITE.name}: expected {old.strip()!r} exactly once; update render_dmz_site")
        site = site.replace(old, new)
    (prefix / "sites").mkdir(exist_ok=True)
    (prefix / "sites" / DMZ_SITE.name).write_text(site, encoding="utf-8")
    conf = prefix / "nginx.conf"
    conf.write_text(_main_conf(prefix, f"include sites/{DMZ_SITE.name};"), encoding="utf-8")
    return conf


def _prepare_prefix(prefix: Path, whitelist: Whitelist) -> None:
    for sub in ("logs", "temp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    snippets = prefix / "snippets"
    if not snippets.exists():
        snippets.symlink_to(DEPLOY_NGINX / "snippets", target_is_directory=True)
    ips = prefix / "wechat-ips.conf"
    if whitelist is None or isinstance(whitelist, Path):
        shutil.copyfile(whitelist or DEPLOY_NGINX / "wechat-ips.conf", ips)
    else:
        addresses = [whitelist] if isinstance(whitelist, str) else list(whitelist)
        ips.write_text("".join(f"{_network(a)} wechat;\n" for a in addresses), encoding="utf-8")


def _network(address: str) -> str:
    return ipaddress.ip_network(address, strict=False).with_prefixlen


def _user_directive() -> str:
    """As root, keep the workers as root: they must reach the test's private temp directory."""
    if os.geteuid() != 0:
        return ""
    return f"user {pwd.getpwuid(0).pw_name};"


def _upstream_servers(ports: int | Sequence[int]) -> str:
    listed = [ports] if isinstance(ports, int) else list(ports)
    return "\n".join(f"        server 127.0.0.1:{port};" for port in listed)


def _real_ip_block(trusted: Sequence[str]) -> str:
    if not trusted:
        return ""
    lines = [f"        set_real_ip_from {_network(a)};" for a in trusted]
    lines += ["        real_ip_header X-Forwarded-For;", "        real_ip_recursive on;"]
    return "\n".join(lines)


def _timeouts_block(proxy_timeout_s: float | None) -> str:
    if proxy_timeout_s is None:
        return "        include snippets/wechat-timeouts.conf;"
    ms = f"{round(proxy_timeout_s * 1000)}ms"
    return "\n".join(
        [
            "        proxy_connect_timeout 2s;",
            f"        proxy_send_timeout {ms};",
            f"        proxy_read_timeout {ms};",
        ]
    )


def _main_conf(prefix: Path, http_body: str) -> str:
    """A minimal main context around an http-level include (used for the DMZ site)."""
    temp = prefix / "temp"
    return "\n".join(
        [
            "daemon off;",
            "worker_processes 1;",
            f"pid {prefix}/nginx.pid;",
            f"error_log {prefix}/logs/error.log warn;",
            _user_directive(),
            "events { worker_connections 256; }",
            "http {",
            *(f"    {kind}_temp_path {temp}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
            f"    {http_body}",
            "}",
            "",
        ]
    )


# ---------------------------------------------------------------- running


def check_config(conf: Path) -> None:
    """``nginx -t`` on ``conf``; fail the test with nginx's output when the config is invalid."""
    binary = require_nginx()
    result = subprocess.run(
        [binary, "-t", "-p", str(conf.parent), "-c", str(conf), "-e", "stderr"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"nginx -t rejected {conf}:\n{result.stderr}{result.stdout}")


@contextmanager
def run_nginx(conf: Path, port: int, *, scheme: str = "http") -> Iterator[NginxProcess]:
    """Check, start and (on exit) stop nginx with ``conf``; yields once ``port`` accepts."""
    check_config(conf)
    binary = require_nginx()
    prefix = conf.parent
    output = prefix / "logs" / "nginx.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(conf), "-e", "stderr"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    nginx = NginxProcess(prefix=prefix, conf=conf, port=port, scheme=scheme, process=process)
    try:
        _wait_until_listening(nginx, output)
        yield nginx
    finally:
        _stop(process)


@contextmanager
def start_nginx(
    tmp_path: Path,
    listen_port: int,
    upstream_port: int | Sequence[int],
    *,
    whitelist: Whitelist = None,
    real_ip_from: Sequence[str] = (),
    proxy_timeout_s: float | None = None,
    legacy: bool = False,
) -> Iterator[NginxProcess]:
    """The loopback variant on 127.0.0.1:``listen_port`` proxying to 127.0.0.1:``upstream_port``.

    Options as in :func:`render_loopback`. The prefix is ``tmp_path/nginx-<listen_port>``, so one
    test may run several instances.
    """
    prefix = tmp_path / f"nginx-{listen_port}"
    conf = render_loopback(
        prefix,
        listen_port,
        upstream_port,
        whitelist=whitelist,
        real_ip_from=real_ip_from,
        proxy_timeout_s=proxy_timeout_s,
        legacy=legacy,
    )
    with run_nginx(conf, listen_port) as nginx:
        yield nginx


@contextmanager
def start_dmz_nginx(
    tmp_path: Path,
    listen_port: int,
    upstream_port: int,
    cert: Path,
    key: Path,
    *,
    whitelist: Whitelist = None,
) -> Iterator[NginxProcess]:
    """deploy/nginx/wechat-gateway.conf itself, over TLS on 127.0.0.1:``listen_port``."""
    prefix = tmp_path / f"nginx-dmz-{listen_port}"
    conf = render_dmz_site(prefix, listen_port, upstream_port, cert, key, whitelist=whitelist)
    with run_nginx(conf, listen_port, scheme="https") as nginx:
        yield nginx


def _wait_until_listening(nginx: NginxProcess, output: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if nginx.process.poll() is not None:
            pytest.fail(f"nginx exited with {nginx.process.returncode}:\n{_read(output)}{nginx.read_error_log()}")
        try:
            with socket.create_connection(("127.0.0.1", nginx.port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    pytest.fail(f"nginx did not listen on port {nginx.port} within {START_TIMEOUT_S} s:\n{_read(output)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGTERM), then SIGKILL if nginx hangs; always reaps the process."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


# ---------------------------------------------------------------- fixture


NginxFactory = Callable[..., NginxProcess]


@pytest.fixture
def nginx_factory(tmp_path: Path) -> Iterator[NginxFactory]:
    """Start loopback nginx instances for this test; all are stopped at teardown.

    ``nginx_factory(upstream_port=..., listen_port=None, **options)`` takes the options of
    :func:`start_nginx`; without ``listen_port`` a free port is picked.
    """
    require_nginx()
    with ExitStack() as stack:

        def start(
            *, upstream_port: int | Sequence[int], listen_port: int | None = None, **options: object
        ) -> NginxProcess:
            port = listen_port if listen_port is not None else free_port()
            return stack.enter_context(start_nginx(tmp_path, port, upstream_port, **options))  # type: ignore[arg-type]

        yield start
