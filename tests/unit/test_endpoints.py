"""Endpoint lock, typed-URL normalisation and key routing (wafer_playground/endpoints.py)."""

from __future__ import annotations

import pytest

from wafer_playground.endpoints import EndpointRefused, Policy, key_for, normalise_base_url


def _public(host: str) -> list[str]:
    return ["93.184.216.34"]


@pytest.mark.parametrize(("url", "expected"), [
    ("https://api.example.com/v1", "https://api.example.com/v1"),
    ("  HTTPS://API.Example.com:8443/v1/  ", "https://api.example.com:8443/v1"),
    ("http://93.184.216.34/v1", "http://93.184.216.34/v1"),
])
def test_normalises_good_urls(url: str, expected: str) -> None:
    assert normalise_base_url(url, resolver=_public) == expected


@pytest.mark.parametrize(("url", "why"), [
    ("http://127.0.0.1:9/internal/text?x=", "query"),
    ("https://api.example.com/v1#frag", "fragment"),
    ("file:///etc/passwd", "http:// or https://"),
    ("gopher://api.example.com/", "http:// or https://"),
    ("https://user:pw@api.example.com/v1", "credentials"),
    ("https://api.example.com/v1\n/x", "control characters"),
    ("https:///v1", "no host"),
    ("https://api.example.com:99999/v1", "port"),
    ("", "enter a base URL"),
])
def test_refuses_bad_urls(url: str, why: str) -> None:
    with pytest.raises(EndpointRefused, match=why):
        normalise_base_url(url, allow_private=True, resolver=_public)


@pytest.mark.parametrize(("host", "label"), [
    ("127.0.0.1", "loopback"), ("[::1]", "loopback"), ("10.1.2.3", "private"),
    ("192.168.0.10", "private"), ("172.16.5.5", "private"), ("169.254.169.254", "link-local"),
    ("0.0.0.0", "unspecified"), ("[::ffff:127.0.0.1]", "loopback"),
])
def test_internal_hosts_are_refused_unless_allowed(host: str, label: str) -> None:
    url = f"http://{host}:8501/_stcore/health"
    with pytest.raises(EndpointRefused, match=label):
        normalise_base_url(url, resolver=_public)
    assert normalise_base_url(url, allow_private=True).endswith("/_stcore/health")


def test_a_name_that_resolves_inside_is_refused() -> None:
    with pytest.raises(EndpointRefused, match="loopback"):
        normalise_base_url("http://sneaky.example.com/v1", resolver=lambda h: ["127.0.0.1"])
    with pytest.raises(EndpointRefused, match="could not be resolved"):
        normalise_base_url("http://no-such-host.invalid/v1")


def test_policy_from_env() -> None:
    assert Policy.from_env({}).kinds == ("wafer", "local", "custom")
    locked = Policy.from_env({"WAFER_ALLOWED_ENDPOINTS": "wafer"})
    assert locked.kinds == ("wafer",) and not locked.allows("custom")
    with pytest.raises(EndpointRefused, match="turned off"):
        locked.check_custom("https://api.example.com/v1")
    both = Policy.from_env({"WAFER_ALLOWED_ENDPOINTS": " Wafer , custom,bogus"})
    assert both.kinds == ("wafer", "custom") and "bogus" in both.problems[0]
    nothing = Policy.from_env({"WAFER_ALLOWED_ENDPOINTS": "bogus"})
    assert nothing.kinds == ("wafer",)
    assert Policy.from_env({"WAFER_ALLOW_PRIVATE_URLS": "1"}).allow_private
    assert not Policy.from_env({"WAFER_ALLOW_PRIVATE_URLS": "no"}).allow_private


def test_allow_list_of_base_urls() -> None:
    policy = Policy.from_env({"WAFER_ALLOWED_BASE_URLS":
                              "https://vllm.internal:8000/v1/, http://10.0.0.5/v1, ftp://x"})
    assert policy.base_urls == ("https://vllm.internal:8000/v1", "http://10.0.0.5/v1")
    assert "ftp://x" in policy.problems[0]
    # operator-chosen internal URLs pass; anything else is refused with the list
    assert policy.check_custom("http://10.0.0.5/v1/") == "http://10.0.0.5/v1"
    with pytest.raises(EndpointRefused, match="only allows these base URLs"):
        policy.check_custom("https://api.example.com/v1")


def test_operator_key_goes_only_to_wafer() -> None:
    op = {"operator": "wfr_operator", "operator_source": "environment"}
    assert key_for("wafer", typed=None, **op) == ("wfr_operator", "environment")
    assert key_for("custom", typed=None, **op) == (None, "none")
    assert key_for("local", typed=None, **op) == (None, "none")
    assert key_for("custom", typed="sk-mine", **op) == ("sk-mine", "sidebar")
    assert key_for("wafer", typed="wfr_mine", **op) == ("wfr_mine", "sidebar")
