"""Redis URLs: every form errorkit accepts, checked whole when the store is built.

| form | what it names |
|---|---|
| `redis://[[user]:password@]host[:port][/db]` | one server (ACL user optional) |
| `rediss://...` | the same over TLS |
| `unix:///path/to/redis.sock?db=0[&password=...][&username=...]` | one server on a unix socket |
| `redis+sentinel://[password@]host:port[,host:port...]/service[/db]` | the master Sentinel names |
| `redis+cluster://[[user]:password@]host:port[,host:port...]` | a Redis Cluster, from any seeds |

`rediss+sentinel://` and `rediss+cluster://` use TLS to every server. TLS options are query
parameters, as redis-py names them: `ssl_ca_certs`, `ssl_certfile`, `ssl_keyfile` (mutual
TLS), `ssl_cert_reqs=required|optional|none`, `ssl_check_hostname=true|false`. Sentinel's own
password (when the sentinels require one) is `sentinel_password=`. Anything else is a
`URLError` (a `ValueError`) naming the problem; no message ever shows a password, also when
the text is no URL at all (`user:secret@host`) or a password holds an unescaped `/`, `?` or `#`.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

Topology = Literal["single", "sentinel", "cluster"]
CertReqs = Literal["required", "optional", "none"]
Address = tuple[str, int]
Problem = Callable[[str], ValueError]

_SCHEMES: dict[str, tuple[Topology, bool]] = {
    "redis": ("single", False),
    "rediss": ("single", True),
    "unix": ("single", False),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}
_TLS_OPTIONS = frozenset({"ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs", "ssl_check_hostname"})
_CERT_REQS = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE}
_DEFAULT_PORTS = {"single": 6379, "sentinel": 26379, "cluster": 6379}
_OPTIONS = _TLS_OPTIONS | {"sentinel_password", "db", "password", "username"}  # every option of every form
#: Every scheme a Redis URL may start with (one server, TLS, a unix socket, Sentinel, Cluster).
SCHEMES = tuple(_SCHEMES)


class URLError(ValueError):
    """A Redis URL errorkit refuses. `shown` is the URL with its passwords redacted, `problem` what
    is wrong with it; the message is both."""

    def __init__(self, shown: str, problem: str) -> None:
        super().__init__(f"Redis URL {shown!r}: {problem}")
        self.shown = shown
        self.problem = problem


@dataclass(frozen=True, slots=True)
class TLSOptions:
    """How to speak TLS to every server of a URL (`rediss...`)."""

    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    cert_reqs: CertReqs = "required"
    check_hostname: bool = True

    def context(self) -> ssl.SSLContext:
        """The client context: the CA (or the system's), the client certificate, the checks."""
        context = ssl.create_default_context(cafile=self.ca_certs)
        if self.certfile is not None:
            context.load_cert_chain(self.certfile, self.keyfile)
        context.check_hostname = self.check_hostname and self.cert_reqs != "none"
        context.verify_mode = _CERT_REQS[self.cert_reqs]
        return context


@dataclass(frozen=True, slots=True)
class RedisURL:
    """A parsed Redis URL. `text` is the URL with its passwords redacted, safe to print."""

    topology: Topology
    addresses: tuple[Address, ...]  # the server, the sentinels, or the cluster's seed nodes
    unix_path: str | None
    username: str | None
    password: str | None
    db: int
    tls: TLSOptions | None
    ssl_context: ssl.SSLContext | None
    service_name: str | None
    sentinel_password: str | None
    text: str


def redact(url: str) -> str:
    """`url` with any password (in the authority or a `*password=` query value) as `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable Redis URL>"

    # no "://" (`user:secret@host`), or an "@" the parser did not take for the end of the credentials
    # (a password with an unescaped "/", "?" or "#"): all up to the last "@" may be a password, none of it shows
    if "://" not in url or _stray_at(parts):
        scheme, sep, rest = url.partition("://")
        if not sep:
            scheme, rest = "", url
        head, sep, query = rest.partition("?")
        rest = head + sep + "&".join(_redacted_option(item) for item in query.split("&") if item)
        if "@" in rest:
            rest = "***@" + rest.rpartition("@")[2]
        return f"{scheme}://{rest}" if scheme else rest

    netloc = parts.netloc
    if "@" in netloc:
        credentials, hosts = netloc.rsplit("@", 1)
        netloc = f"{credentials.split(':', 1)[0]}:***@{hosts}" if ":" in credentials else f"***@{hosts}"

    query = "&".join(_redacted_option(item) for item in parts.query.split("&") if item)
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def _stray_at(parts: SplitResult) -> bool:
    """Whether a URL has an "@" past its authority, as the parser split it (a password cut short by an
    unescaped "/", "?" or "#"), other than in the value of an option errorkit knows (a file path)."""
    if "@" in parts.path or "@" in parts.fragment:
        return True
    for item in parts.query.split("&"):
        name, sep, _ = item.partition("=")
        if "@" in item and not (sep and name in _OPTIONS):
            return True
    return False


def _redacted_option(item: str) -> str:
    """One `name=value` of a query, the value as `***` when the name ends with "password"."""
    name, sep, value = item.partition("=")
    if name.lower().endswith("password"):
        return f"{name}=***"
    return f"{name}={value}" if sep else name


def parse_url(url: str) -> RedisURL:
    """Parse and check a Redis URL; a `ValueError` names the problem (never the password)."""
    shown = redact(url)

    def problem(message: str) -> URLError:
        return URLError(shown, message)

    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise problem(str(exc)) from None
    if parts.scheme not in _SCHEMES:
        raise problem(f"unknown scheme {parts.scheme!r}: use one of {', '.join(sorted(_SCHEMES))}")
    if _stray_at(parts):  # (before a problem quotes a piece of the password back as a host, a port, an option)
        raise problem("an '@' after the host: write '/', '?', '#' in a password as %2F, %3F, %23")
    topology, uses_tls = _SCHEMES[parts.scheme]

    query: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in query:
            raise problem(f"option {name!r} is given twice")
        query[name] = value

    allowed = {"sentinel_password"} if topology == "sentinel" else set()
    if uses_tls:
        allowed |= _TLS_OPTIONS
    if parts.scheme == "unix":
        allowed |= {"db", "password", "username"}
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise problem(f"unknown option {unknown[0]!r} (accepted here: {', '.join(sorted(allowed)) or 'none'})")

    credentials, _, hosts = parts.netloc.rpartition("@")
    username, password = _credentials(credentials, bare_is_password=topology == "sentinel")
    if parts.scheme == "unix":
        if hosts or credentials:
            raise problem("a unix socket URL is unix:///path/to/redis.sock (no host)")
        if not parts.path:
            raise problem("no socket path")
        username = query.get("username", username)
        password = query.get("password", password)
        addresses: tuple[Address, ...] = ()
        db = _db(query.get("db", "0"), problem)
        path_rest: list[str] = []
    else:
        addresses = tuple(_address(host, _DEFAULT_PORTS[topology], problem) for host in hosts.split(","))
        path_rest = [segment for segment in parts.path.split("/") if segment]
        db = 0
    if username is not None and password is None:
        raise problem("a username needs a password (redis://user:password@host)")

    service_name = None
    if topology == "sentinel":
        if not path_rest:
            raise problem("name the Sentinel service: redis+sentinel://host:port/service_name[/db]")
        service_name = unquote(path_rest.pop(0))
    if parts.scheme != "unix":
        if len(path_rest) > 1:
            raise problem(f"unexpected path {parts.path!r}")
        db = _db(path_rest[0], problem) if path_rest else 0
    if topology == "cluster" and db != 0:
        raise problem("Redis Cluster has only database 0")
    if topology == "single" and parts.scheme != "unix" and len(addresses) != 1:
        raise problem("one server only: for several, use redis+sentinel:// or redis+cluster://")

    tls = None
    context = None
    if uses_tls:
        tls = TLSOptions(
            ca_certs=query.get("ssl_ca_certs"),
            certfile=query.get("ssl_certfile"),
            keyfile=query.get("ssl_keyfile"),
            cert_reqs=_choice(query.get("ssl_cert_reqs", "required"), "ssl_cert_reqs", problem),
            check_hostname=_boolean(query.get("ssl_check_hostname", "true"), "ssl_check_hostname", problem),
        )
        if tls.keyfile is not None and tls.certfile is None:
            raise problem("ssl_keyfile needs ssl_certfile")
        try:
            context = tls.context()
        except (OSError, ssl.SSLError) as exc:
            raise problem(f"cannot load the TLS files: {exc}") from None

    return RedisURL(
        topology=topology,
        addresses=addresses,
        unix_path=unquote(parts.path) if parts.scheme == "unix" else None,
        username=username,
        password=password,
        db=db,
        tls=tls,
        ssl_context=context,
        service_name=service_name,
        sentinel_password=query.get("sentinel_password"),
        text=shown,
    )


def _credentials(text: str, *, bare_is_password: bool) -> tuple[str | None, str | None]:
    if not text:
        return None, None
    if ":" not in text:
        return (None, unquote(text)) if bare_is_password else (unquote(text), None)
    user, password = text.split(":", 1)
    return (unquote(user) or None), unquote(password)


def _address(text: str, default_port: int, problem: Problem) -> Address:
    if not text:
        raise problem("a host is missing")
    if text.startswith("["):  # [::1]:6379
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = text.partition(":")

    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise problem(f"port {port_text!r} is not a number") from None
    if not 0 < port < 65536:
        raise problem(f"port {port} is out of range")
    return host, port


def _db(text: str, problem: Problem) -> int:
    if not text.isdigit():
        raise problem(f"database {text!r} is not a number")
    return int(text)


def _choice(value: str, name: str, problem: Problem) -> CertReqs:
    if value not in _CERT_REQS:
        raise problem(f"{name} must be required, optional or none, not {value!r}")
    return cast(CertReqs, value)


def _boolean(value: str, name: str, problem: Problem) -> bool:
    if value.lower() not in ("true", "false"):
        raise problem(f"{name} must be true or false, not {value!r}")
    return value.lower() == "true"
