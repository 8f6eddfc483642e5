"""Which endpoints a visitor may use, which URLs they may type, and which key goes where.

A shared instance has visitors who are not its operator. The rules (SECURITY.md, "Endpoints"):

- The operator's key (secrets or environment) is sent only to the operator's Wafer base URL.
  A Custom URL gets only a key typed in that same session; the local engine likewise.
- `WAFER_ALLOWED_ENDPOINTS` (comma list of `wafer`, `local`, `custom`; default all three)
  removes endpoint kinds for every visitor. `WAFER_ALLOWED_BASE_URLS` (comma list) limits
  Custom URL to those base URLs.
- A typed base URL is normalised: http or https only, no user:password, no query or fragment
  (request URLs are base + path, so `?x=` would reach any path), no whitespace or control
  characters. Hosts on loopback, private, link-local or otherwise reserved addresses are
  refused unless `WAFER_ALLOW_PRIVATE_URLS=1` (for running the app for yourself, e.g. against
  your own vLLM on localhost). The check resolves the host name once; see SECURITY.md for the
  DNS-rebinding caveat.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

EndpointKind = Literal["wafer", "local", "custom"]
ALL_KINDS: tuple[EndpointKind, ...] = ("wafer", "local", "custom")
_TRUE = {"1", "true", "yes", "on"}

Resolver = Callable[[str], list[str]]


class EndpointRefused(ValueError):
    """A base URL or endpoint that this instance does not allow; the message says why."""


def _resolve(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise EndpointRefused(f"the host {host!r} could not be resolved ({exc})") from exc
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class Policy:
    kinds: tuple[EndpointKind, ...] = ALL_KINDS
    base_urls: tuple[str, ...] = ()  # allow-list for Custom URL; empty = any public URL
    allow_private: bool = False
    problems: tuple[str, ...] = ()  # misconfiguration the operator should see

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Policy:
        env = os.environ if env is None else env
        problems: list[str] = []
        raw = env.get("WAFER_ALLOWED_ENDPOINTS", "").strip()
        kinds: tuple[EndpointKind, ...] = ALL_KINDS
        if raw:
            named = [k.strip().lower() for k in raw.split(",") if k.strip()]
            unknown = [k for k in named if k not in ALL_KINDS]
            if unknown:
                problems.append(f"WAFER_ALLOWED_ENDPOINTS names unknown kinds {unknown}; "
                                f"known: {', '.join(ALL_KINDS)}")
            kinds = tuple(k for k in ALL_KINDS if k in named)
            if not kinds:  # a lock that allows nothing would leave no page working
                problems.append("WAFER_ALLOWED_ENDPOINTS allows nothing; using wafer only")
                kinds = ("wafer",)
        allow_private = env.get("WAFER_ALLOW_PRIVATE_URLS", "").strip().lower() in _TRUE
        urls: list[str] = []
        for item in env.get("WAFER_ALLOWED_BASE_URLS", "").split(","):
            if not item.strip():
                continue
            try:
                urls.append(normalise_base_url(item, allow_private=True))
            except EndpointRefused as exc:
                problems.append(f"WAFER_ALLOWED_BASE_URLS entry {item.strip()!r}: {exc}")
        return cls(kinds, tuple(urls), allow_private, tuple(problems))

    def allows(self, kind: str) -> bool:
        return kind in self.kinds

    def check_custom(self, url: str, *, resolver: Resolver = _resolve) -> str:
        """The normalised URL, or EndpointRefused with the reason."""
        if not self.allows("custom"):
            raise EndpointRefused("custom URLs are turned off on this server")
        if self.base_urls:
            # allow-listed URLs were chosen by the operator: private hosts are fine there
            url = normalise_base_url(url, allow_private=True)
            if url not in self.base_urls:
                raise EndpointRefused("this server only allows these base URLs: "
                                      + ", ".join(self.base_urls))
            return url
        return normalise_base_url(url, allow_private=self.allow_private, resolver=resolver)


def _blocked_address(addr: str) -> str | None:
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for test, label in ((ip.is_loopback, "loopback"), (ip.is_unspecified, "unspecified"),
                        (ip.is_link_local, "link-local"), (ip.is_private, "private"),
                        (ip.is_multicast, "multicast"), (ip.is_reserved, "reserved")):
        if test:
            return label
    return None


def normalise_base_url(url: str, *, allow_private: bool = False,
                       resolver: Resolver = _resolve) -> str:
    """`scheme://host[:port]/path` with no trailing slash, or EndpointRefused saying why."""
    text = (url or "").strip()
    if not text:
        raise EndpointRefused("enter a base URL, e.g. https://example.com/v1")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise EndpointRefused("the URL contains spaces or control characters")
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        raise EndpointRefused("the URL must start with http:// or https://")
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise EndpointRefused("a base URL cannot carry a query (?…) or a fragment (#…)")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise EndpointRefused("put credentials in the API key field, not in the URL")
    host = parts.hostname
    if not host:
        raise EndpointRefused("the URL has no host name")
    try:
        port = parts.port
    except ValueError as exc:
        raise EndpointRefused("the URL's port is not a number from 1 to 65535") from exc
    if not allow_private:
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            addresses = resolver(host)
        for addr in addresses:
            label = _blocked_address(addr)
            if label:
                raise EndpointRefused(
                    f"{host} is a {label} address ({addr}); this server does not send "
                    "requests to internal hosts (set WAFER_ALLOW_PRIVATE_URLS=1 when you run "
                    "the app for yourself)")
    netloc = f"[{host}]" if ":" in host else host
    if port:
        netloc += f":{port}"
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), netloc.lower(), path, "", ""))


def key_for(kind: EndpointKind, *, typed: str | None, operator: str | None,
            operator_source: str) -> tuple[str | None, str]:
    """(key, source) to send on this endpoint kind.

    Only Wafer gets the operator's key (and only at the operator's base URL, which the
    caller uses for that kind); everything else gets a key typed in this session or none.
    """
    if typed:
        return typed, "sidebar"
    if kind == "wafer" and operator:
        return operator, operator_source
    return None, "none"
