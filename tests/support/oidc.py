"""A real OpenID provider for the single-sign-on tests, and a browser's part of the sign-in.

The provider is node-oidc-provider (npm, in package.json; `npm ci` in bin/test installs it) with its
development login form, which accepts any login name: the test decides who signs in and with which
claims by writing the accounts file the provider reads on every lookup.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import httpx

from . import peers
from .processes import ROOT, Process, free_port, port_open

SCRIPT = Path(__file__).with_name("oidc_provider.mjs")


class OidcProvider:
    def __init__(self, directory: Path, console_url: str, client_id: str, client_secret: str):
        node = peers.require_binary("node")
        peers.require((ROOT / "node_modules" / "oidc-provider").is_dir(), "oidc-provider (npm)", hint="run npm ci")
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.accounts_file = directory / "oidc-accounts.json"
        self.accounts: dict[str, dict] = {}
        self._write_accounts()
        clients = [{
            "client_id": client_id, "client_secret": client_secret,
            "redirect_uris": [f"{console_url}/accounts/sso/callback/"],
            "post_logout_redirect_uris": [f"{console_url}/accounts/login/"],
        }]  # fmt: skip
        clients_file = directory / "oidc-clients.json"
        clients_file.write_text(json.dumps(clients))
        self.process = Process("oidc-provider", [node, str(SCRIPT), str(self.port), str(clients_file), str(self.accounts_file)])
        self.process.wait_until(lambda: port_open(self.port), what="listening")

    def set_account(self, login: str, **claims) -> None:
        """Who `login` is at the provider from now on: sub (default: the login), email, groups, ..."""
        self.accounts[login] = claims
        self._write_accounts()

    def _write_accounts(self) -> None:
        tmp = self.accounts_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.accounts))
        tmp.replace(self.accounts_file)  # the provider never reads half a file

    def stop(self) -> None:
        self.process.stop()


def follow(client: httpx.Client, response: httpx.Response, rewrite: Callable[[httpx.URL], httpx.URL] | None = None) -> httpx.Response:
    """Follow redirects as a browser does, letting `rewrite` change each URL (to tamper with the callback)."""
    for _ in range(20):
        if not response.is_redirect:
            return response
        url = response.url.join(response.headers["location"])
        response = client.get(rewrite(url) if rewrite else url)
    raise AssertionError(f"too many redirects, last {response.url}")


def submit_form(client: httpx.Client, page: httpx.Response, fields: dict | None = None, **follow_kwargs) -> httpx.Response:
    """Post the page's first form with its hidden inputs plus `fields`, then follow the redirects."""
    form = re.search(r"<form[^>]*action=\"([^\"]*)\"[^>]*>(.*?)</form>", page.text, re.S)
    assert form, f"no form on {page.url}:\n{page.text[:2000]}"
    hidden = dict(re.findall(r"<input type=\"hidden\" name=\"([^\"]+)\" value=\"([^\"]*)\"", form.group(2)))
    return follow(client, client.post(page.url.join(form.group(1)), data={**hidden, **(fields or {})}), **follow_kwargs)


def start_sign_in(client: httpx.Client, console_url: str, rewrite=None) -> httpx.Response:
    """The console's single-sign-on link, followed to the provider: its login form (or, with a live
    provider session, straight back to the console)."""
    return follow(client, client.get(f"{console_url}/accounts/sso/start/"), rewrite)


def sign_in(client: httpx.Client, console_url: str, login: str, rewrite: Callable[[httpx.URL], httpx.URL] | None = None) -> httpx.Response:
    """A whole sign-in: the console's link, the provider's login and consent forms, back to the console."""
    return answer_provider(client, start_sign_in(client, console_url, rewrite), login, rewrite)


def answer_provider(client: httpx.Client, page: httpx.Response, login: str, rewrite=None) -> httpx.Response:
    """Fill the provider's login form on `page` (and its consent form), following back to the console."""
    page = submit_form(client, page, {"login": login, "password": "any"}, rewrite=rewrite)
    if 'name="prompt" value="consent"' in page.text:
        page = submit_form(client, page, rewrite=rewrite)
    return page
