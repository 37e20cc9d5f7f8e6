"""Live-secret verification: ask the provider, with a read-only identity call,
whether a found credential still works. Off by default; each rule family is
enabled on its own (SECURITY_VERIFY_FAMILIES) and its base URL is configurable.

    github  GET  <SECURITY_VERIFY_GITHUB_URL>/user               Authorization: Bearer <token>
    slack   POST <SECURITY_VERIFY_SLACK_URL>/auth.test           Authorization: Bearer <token>
    aws     POST <SECURITY_VERIFY_AWS_STS_URL>/ sts:GetCallerIdentity, signed with SigV4 (botocore)

The secret is re-read from the scanned file for the call and kept in memory
only: never stored, logged, audited or shown. What is kept is the verdict and
the identity the provider answered with (a login, a team, an ARN).
"""

from __future__ import annotations

from dataclasses import dataclass

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from apps.core.resilience import breaker_for, call_through

LIVE, INVALID, UNKNOWN = "live", "invalid", "unknown"
FAMILY_OF_RULE = {
    "github-pat": "github",
    "github-fine-grained-pat": "github",
    "github-oauth-token": "github",
    "github-app-token": "github",
    "slack-bot-token": "slack",
    "slack-user-token": "slack",
    "slack-legacy-token": "slack",
    "aws-access-key-id": "aws",
    "aws-secret-access-key": "aws",
}


@dataclass
class Verdict:
    status: str  # live | invalid | unknown
    identity: str  # who the provider says the credential is (never the credential)
    detail: str


def enabled(family: str) -> bool:
    return family in settings.SECURITY_VERIFY_FAMILIES


def _client() -> httpx.Client:
    return httpx.Client(timeout=settings.SECURITY_VERIFY_TIMEOUT, follow_redirects=False)


def _through(family: str, call):
    return call_through(breaker_for(f"security:verify:{family}"), call, errors=(httpx.TransportError,), describe=f"the {family} API")


def github(token: str) -> Verdict:
    url = f"{settings.SECURITY_VERIFY_GITHUB_URL.rstrip('/')}/user"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json", "User-Agent": "opsconsole-verify"}
    with _client() as client:
        response = _through("github", lambda: client.get(url, headers=headers))
    if response.status_code == 200:
        return Verdict(LIVE, str(response.json().get("login", ""))[:100], "GitHub /user answered 200")
    if response.status_code == 401:
        return Verdict(INVALID, "", "GitHub /user answered 401 (bad credentials)")
    return Verdict(UNKNOWN, "", f"GitHub /user answered HTTP {response.status_code}")


def slack(token: str) -> Verdict:
    url = f"{settings.SECURITY_VERIFY_SLACK_URL.rstrip('/')}/auth.test"
    with _client() as client:
        response = _through("slack", lambda: client.post(url, headers={"Authorization": f"Bearer {token}"}))
    try:
        body = response.json()
    except ValueError:
        return Verdict(UNKNOWN, "", f"Slack auth.test answered HTTP {response.status_code} without JSON")
    if body.get("ok"):
        return Verdict(LIVE, f"{body.get('team', '')}/{body.get('user', '')}"[:100], "Slack auth.test answered ok")
    if body.get("error") in ("invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"):
        return Verdict(INVALID, "", f"Slack auth.test: {body['error']}")
    return Verdict(UNKNOWN, "", f"Slack auth.test: {str(body.get('error', 'no answer'))[:80]}")


def aws(access_key_id: str, secret_access_key: str) -> Verdict:
    sts = boto3.client(
        "sts",
        endpoint_url=settings.SECURITY_VERIFY_AWS_STS_URL,
        region_name="us-east-1",
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=Config(
            retries={"max_attempts": 1}, connect_timeout=settings.SECURITY_VERIFY_TIMEOUT, read_timeout=settings.SECURITY_VERIFY_TIMEOUT
        ),
    )
    try:
        identity = _through("aws", sts.get_caller_identity)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("InvalidClientTokenId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken"):
            return Verdict(INVALID, "", f"sts:GetCallerIdentity: {code}")
        return Verdict(UNKNOWN, "", f"sts:GetCallerIdentity: {code or 'error'}")
    except BotoCoreError as exc:
        return Verdict(UNKNOWN, "", f"sts:GetCallerIdentity failed: {type(exc).__name__}")
    return Verdict(LIVE, str(identity.get("Arn", ""))[:200], "sts:GetCallerIdentity answered")
