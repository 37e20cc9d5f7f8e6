# ruff: noqa: E501 — a table of rules reads best one rule per line.
"""The secret rules. Each rule runs only on windows that contain one of its
keywords (lower-case substrings), so most files pay for a few regexes only.

A pattern is a bytes regex whose group `s` is the secret (the whole match when
there is none); an optional group `n` is the name it is assigned to. Patterns
use bounded quantifiers only: their longest match must fit the scanner's
window overlap (`MAX_MATCH`), and none can backtrack badly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import re2

from . import checks

CRITICAL, HIGH, MEDIUM, LOW = "critical", "high", "medium", "low"
MAX_MATCH = 12_000
LEADING_LOOKBEHIND = re.compile(r"^\(\?<!\[([^\]]+)\]\)")
TRAILING_LOOKAHEAD = re.compile(r"\(\?!\[([^\]]+)\]\)$")
ASSIGN = r"""["']?[ \t]{0,5}(?:=|:=|:|=>)[ \t]{0,5}["']?"""


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    pattern: str
    keywords: tuple[str, ...]
    severity: str = HIGH
    check: Callable[[str, str, str], bool] | None = None  # (secret, name, path) -> real?
    requires: str | None = None  # another regex the window must contain
    priority: int = 1  # overlapping matches: the higher priority wins (generic rules: 0)
    # Run by RE2 (linear time, ~10x faster on the keyword alternations of the generic rules);
    # such patterns use no look-around and no back-reference.
    re2: bool = False
    paths: Callable[[str], bool] | None = None  # only files whose path passes (e.g. configuration files)
    example: Callable[[str, bytes], bool] | None = None  # (secret, whole match) -> a documentation example?
    regex: re.Pattern = field(init=False, repr=False, compare=False)
    required: re.Pattern | None = field(init=False, repr=False, compare=False)
    # A leading look-behind `(?<![...])` stops `re` from searching for the literal
    # prefix quickly; it is checked on the byte before the match instead.
    not_after: re.Pattern | None = field(init=False, repr=False, compare=False)
    not_before: re.Pattern | None = field(init=False, repr=False, compare=False)  # a trailing look-ahead, for RE2 rules
    secret_group: int = field(init=False, repr=False, compare=False)  # 0 = the whole match
    name_group: int = field(init=False, repr=False, compare=False)  # 0 = none

    def __post_init__(self):
        pattern, not_after, not_before = self.pattern, None, None
        lead = LEADING_LOOKBEHIND.match(pattern)
        if lead:
            pattern, not_after = pattern[lead.end() :], re.compile(f"[{lead.group(1)}]".encode())
        trail = TRAILING_LOOKAHEAD.search(pattern) if self.re2 else None
        if trail:  # RE2 has no look-ahead: the byte after a (greedy) match is checked instead
            pattern, not_before = pattern[: trail.start()], re.compile(f"[{trail.group(1)}]".encode())
        regex = re2.compile(("(?m)" + pattern).encode()) if self.re2 else re.compile(pattern.encode(), re.MULTILINE)
        groups = {(k.decode() if isinstance(k, bytes) else k): v for k, v in regex.groupindex.items()}
        object.__setattr__(self, "regex", regex)
        object.__setattr__(self, "secret_group", groups.get("s", 0))
        object.__setattr__(self, "name_group", groups.get("n", 0))
        object.__setattr__(self, "not_after", not_after)
        object.__setattr__(self, "not_before", not_before)
        object.__setattr__(self, "required", re.compile(self.requires.encode()) if self.requires else None)

    def bounded_at(self, buf: bytes, start: int, end: int) -> bool:
        if self.not_before is not None and end < len(buf) and self.not_before.match(buf, end):
            return False
        return self.not_after is None or start == 0 or not self.not_after.match(buf, start - 1)

    @property
    def generic(self) -> bool:
        return self.priority <= 0


def token(rule_id: str, title: str, pattern: str, *keywords: str, severity: str = HIGH, **extra) -> Rule:
    return Rule(rule_id, title, pattern, tuple(k.lower() for k in keywords), severity, **extra)


def pem(rule_id: str, title: str, label: str, severity: str = CRITICAL) -> Rule:
    body = r"(?:\\[nr]|[\r\n \t]|[A-Za-z0-9+/=:,\-()]){64,11000}?"
    return Rule(
        rule_id, title, rf"-----BEGIN {label}-----(?P<s>{body})-----END {label}-----",
        (f"begin {label.lower()}",), severity, check=lambda s, n, p: checks.pem_body(s),
    )  # fmt: skip


def _keyword_hex(name_re: str, value_re: str) -> str:
    return rf"(?i)(?P<n>{name_re}){ASSIGN}(?P<s>{value_re})(?![0-9a-zA-Z])"


def _not_template(s, n, p):
    return not checks.is_template(s)


def _basic_auth(s, n, p):
    return checks.basic_auth_pair(s)


def _doc_url(secret: str, match: bytes) -> bool:
    """user:tiger@localhost, anything@db.example.com: a URL from documentation, not a leaked password."""
    host = match.rsplit(b"@", 1)[-1].split(b"/", 1)[0].decode("utf-8", "replace")
    return checks.is_doc_credential(secret, host)


PROVIDER_RULES = [
    # --- cloud providers
    token("aws-access-key-id", "AWS access key ID", r"(?<![A-Z0-9])(?P<s>(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})(?![A-Z0-9])",
          "akia", "asia", "abia", "acca", "a3t", severity=CRITICAL),
    token("aws-secret-access-key", "AWS secret access key",
          rf"(?i)(?P<n>(?:aws)?[_\-.]?secret[_\-.]?(?:access)?[_\-.]?key){ASSIGN}(?P<s>[A-Za-z0-9/+]{{40}})(?![A-Za-z0-9/+=])",
          "secret_access_key", "secretaccesskey", "aws_secret", "secret-access-key", "secret_key", severity=CRITICAL),
    token("aws-session-token", "AWS session token", rf"(?i)(?P<n>session[_\-]?token){ASSIGN}(?P<s>[A-Za-z0-9/+=]{{100,1200}})",
          "session_token", "sessiontoken", requires=r"(?i)aws"),
    token("aws-mws-key", "Amazon MWS auth token", r"(?P<s>amzn\.mws\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})", "amzn.mws"),
    Rule("gcp-service-account", "GCP service account key (JSON)",
         r'"private_key"\s{0,5}:\s{0,5}"(?P<s>-----BEGIN (?:RSA )?PRIVATE KEY-----[A-Za-z0-9+/=\\\s]{100,11000}?-----END (?:RSA )?PRIVATE KEY-----(?:\\n)?)"',
         ("service_account",), CRITICAL, requires=r'"type"\s{0,5}:\s{0,5}"service_account"', priority=2),
    token("gcp-api-key", "Google API key", r"(?<![0-9A-Za-z_\-])(?P<s>AIza[0-9A-Za-z_\-]{35})(?![0-9A-Za-z_\-])", "aiza"),
    token("gcp-oauth-client-secret", "Google OAuth client secret", r"(?<![0-9A-Za-z_\-])(?P<s>GOCSPX-[0-9A-Za-z_\-]{28})(?![0-9A-Za-z_\-])", "gocspx-"),
    token("google-oauth-access-token", "Google OAuth access token", r"(?<![0-9A-Za-z_\-.])(?P<s>ya29\.[0-9A-Za-z_\-]{30,400})", "ya29."),
    token("google-oauth-refresh-token", "Google OAuth refresh token", r"(?<![0-9A-Za-z])(?P<s>1//0[0-9A-Za-z_\-]{40,200})", "1//0"),
    token("azure-storage-account-key", "Azure storage account key", r"(?i)AccountKey=(?P<s>[A-Za-z0-9+/]{86}==)", "accountkey=", severity=CRITICAL),
    token("azure-shared-access-key", "Azure Service Bus / Event Hubs shared access key",
          r"(?i)SharedAccessKey=(?P<s>[A-Za-z0-9+/]{43}=)", "sharedaccesskey="),
    token("azure-sas-token", "Azure shared access signature", r"[?&]sig=(?P<s>[A-Za-z0-9%+/]{40,100}(?:%3D|=){0,2})", "sig=",
          requires=r"[?&]sv=\d{4}-\d{2}-\d{2}", severity=MEDIUM),
    token("azure-ad-client-secret", "Azure AD (Entra ID) client secret",
          r"(?<![A-Za-z0-9_~.\-])(?P<s>[A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34})(?![A-Za-z0-9_~.\-])", "q~"),
    token("azure-devops-pat", "Azure DevOps personal access token",
          rf"(?i)(?P<n>(?:azure[_\-]?devops|ado|vsts|devops)[\w\-]{{0,20}}(?:pat|token)){ASSIGN}(?P<s>[a-z2-7]{{52}})(?![a-z0-9])",
          "devops", "ado_", "vsts"),
    token("alibaba-access-key-id", "Alibaba Cloud access key ID", r"(?<![A-Za-z0-9])(?P<s>LTAI[A-Za-z0-9]{20})(?![A-Za-z0-9])", "ltai"),
    token("digitalocean-token", "DigitalOcean token", r"(?<![A-Za-z0-9])(?P<s>do[opr]_v1_[a-f0-9]{64})(?![a-f0-9])", "dop_v1_", "doo_v1_", "dor_v1_"),
    token("heroku-api-key", "Heroku API key",
          rf"(?i)(?P<n>heroku[\w\-]{{0,20}}){ASSIGN}(?P<s>[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}})(?![0-9a-f])", "heroku"),
    token("cloudflare-api-token", "Cloudflare API token",
          rf"(?i)(?P<n>(?:cloudflare|cf)[_\-]?api[_\-]?(?:token|key)){ASSIGN}(?P<s>[A-Za-z0-9_\-]{{40}})(?![A-Za-z0-9_\-])", "cloudflare", "cf_api", "cf-api"),
    token("flyio-token", "Fly.io access token", r"(?<![A-Za-z0-9])(?P<s>fo1_[A-Za-z0-9_\-]{43})(?![A-Za-z0-9_\-])", "fo1_"),
    # --- source hosting and CI
    token("github-pat", "GitHub personal access token", r"(?<![A-Za-z0-9_])(?P<s>ghp_[A-Za-z0-9]{36})(?![A-Za-z0-9])", "ghp_", severity=CRITICAL),
    token("github-oauth-token", "GitHub OAuth access token", r"(?<![A-Za-z0-9_])(?P<s>gho_[A-Za-z0-9]{36})(?![A-Za-z0-9])", "gho_"),
    token("github-app-token", "GitHub App token", r"(?<![A-Za-z0-9_])(?P<s>gh[us]_[A-Za-z0-9]{36})(?![A-Za-z0-9])", "ghu_", "ghs_"),
    token("github-refresh-token", "GitHub refresh token", r"(?<![A-Za-z0-9_])(?P<s>ghr_[A-Za-z0-9]{36,76})(?![A-Za-z0-9])", "ghr_"),
    token("github-fine-grained-pat", "GitHub fine-grained personal access token",
          r"(?<![A-Za-z0-9_])(?P<s>github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})(?![A-Za-z0-9])", "github_pat_", severity=CRITICAL),
    token("gitlab-pat", "GitLab personal access token", r"(?<![A-Za-z0-9_\-])(?P<s>glpat-[A-Za-z0-9_\-]{20})(?![A-Za-z0-9_\-])", "glpat-", severity=CRITICAL),
    token("gitlab-pipeline-trigger-token", "GitLab pipeline trigger token", r"(?<![A-Za-z0-9])(?P<s>glptt-[0-9a-f]{40})(?![0-9a-f])", "glptt-"),
    token("gitlab-runner-token", "GitLab runner token", r"(?<![A-Za-z0-9])(?P<s>(?:glrt-|GR1348941)[A-Za-z0-9_\-]{20})(?![A-Za-z0-9_\-])",
          "glrt-", "gr1348941"),
    token("gitlab-deploy-token", "GitLab deploy token", r"(?<![A-Za-z0-9])(?P<s>gldt-[A-Za-z0-9_\-]{20})(?![A-Za-z0-9_\-])", "gldt-"),
    token("atlassian-api-token", "Atlassian API token", r"(?<![A-Za-z0-9])(?P<s>ATATT3[A-Za-z0-9_\-=]{180,200})(?![A-Za-z0-9_\-=])", "atatt3"),
    token("linear-api-key", "Linear API key", r"(?<![A-Za-z0-9])(?P<s>lin_api_[A-Za-z0-9]{40})(?![A-Za-z0-9])", "lin_api_"),
    token("postman-api-key", "Postman API key", r"(?<![A-Za-z0-9])(?P<s>PMAK-[a-f0-9]{24}-[a-f0-9]{34})(?![a-f0-9])", "pmak-"),
    # --- chat and webhooks
    token("slack-bot-token", "Slack bot token", r"(?<![A-Za-z0-9])(?P<s>xoxb-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24})(?![A-Za-z0-9])", "xoxb-"),
    token("slack-user-token", "Slack user token", r"(?<![A-Za-z0-9])(?P<s>xox[pe](?:-[0-9]{10,13}){3}-[a-f0-9]{32})(?![a-f0-9])", "xoxp-", "xoxe-"),
    token("slack-app-token", "Slack app-level token", r"(?<![A-Za-z0-9])(?P<s>xapp-\d-[A-Z0-9]{9,12}-\d{10,13}-[a-f0-9]{64})(?![a-f0-9])", "xapp-"),
    token("slack-legacy-token", "Slack legacy token", r"(?<![A-Za-z0-9])(?P<s>xox[ars]-[0-9]{10,13}-[0-9A-Za-z\-]{20,80})(?![A-Za-z0-9\-])",
          "xoxa-", "xoxr-", "xoxs-"),
    token("slack-webhook", "Slack incoming webhook",
          r"(?P<s>https://hooks\.slack\.com/(?:services|workflows|triggers)/T[A-Z0-9]{8,12}/[A-Z0-9]{8,12}/[A-Za-z0-9]{20,32})", "hooks.slack.com",
          severity=MEDIUM),
    token("discord-bot-token", "Discord bot token",
          r"(?<![A-Za-z0-9_\-])(?P<s>[MNO][A-Za-z0-9_\-]{23,25}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,38})(?![A-Za-z0-9_\-])", "discord"),
    token("discord-webhook", "Discord webhook",
          r"(?P<s>https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]{17,20}/[A-Za-z0-9_\-]{60,70})", "/api/webhooks/",
          severity=MEDIUM),
    token("teams-webhook", "Microsoft Teams incoming webhook",
          r"(?P<s>https://[a-z0-9\-]+\.webhook\.office\.com/webhookb2/[a-f0-9\-]{36}@[a-f0-9\-]{36}/IncomingWebhook/[A-Za-z0-9]{32}/[a-f0-9\-]{36})",
          "webhook.office.com", severity=MEDIUM),
    token("telegram-bot-token", "Telegram bot token", r"(?<![0-9A-Za-z])(?P<s>[0-9]{8,10}:AA[0-9A-Za-z_\-]{33})(?![0-9A-Za-z_\-])", ":aa", re2=True),
    # --- payments and messaging
    token("stripe-secret-key", "Stripe live secret key", r"(?<![A-Za-z0-9])(?P<s>sk_live_[0-9A-Za-z]{24,99})(?![A-Za-z0-9])", "sk_live_",
          severity=CRITICAL),
    token("stripe-restricted-key", "Stripe live restricted key", r"(?<![A-Za-z0-9])(?P<s>rk_live_[0-9A-Za-z]{24,99})(?![A-Za-z0-9])", "rk_live_"),
    token("stripe-test-key", "Stripe test secret key", r"(?<![A-Za-z0-9])(?P<s>sk_test_[0-9A-Za-z]{24,99})(?![A-Za-z0-9])", "sk_test_", severity=LOW),
    token("stripe-webhook-secret", "Stripe webhook signing secret", r"(?<![A-Za-z0-9])(?P<s>whsec_[A-Za-z0-9+/]{32,64})(?![A-Za-z0-9+/])", "whsec_"),
    token("square-access-token", "Square access token",
          r"(?<![A-Za-z0-9])(?P<s>EAAA[A-Za-z0-9_\-]{60}|sq0atp-[0-9A-Za-z_\-]{22})(?![A-Za-z0-9_\-])", "eaaa", "sq0atp-"),
    token("square-oauth-secret", "Square OAuth secret", r"(?<![A-Za-z0-9])(?P<s>sq0csp-[0-9A-Za-z_\-]{43})(?![A-Za-z0-9_\-])", "sq0csp-"),
    token("shopify-token", "Shopify access token", r"(?<![A-Za-z0-9])(?P<s>shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32})(?![a-fA-F0-9])",
          "shpat_", "shpca_", "shppa_", "shpss_"),
    # Twilio key SIDs are "SK" + 32 lower-case hex digits: specific enough without "twilio" nearby.
    token("twilio-api-key", "Twilio API key SID", r"(?<![A-Za-z0-9])(?P<s>SK[0-9a-f]{32})(?![A-Za-z0-9])", "sk"),
    token("twilio-auth-token", "Twilio auth token", _keyword_hex(r"twilio[\w\-]{0,20}(?:auth)?[_\-]?token", "[0-9a-f]{32}"), "twilio"),
    token("sendgrid-api-key", "SendGrid API key", r"(?<![A-Za-z0-9])(?P<s>SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})(?![A-Za-z0-9_\-])", "sg."),
    token("mailgun-api-key", "Mailgun API key", r"(?<![A-Za-z0-9_\-])(?P<s>key-[0-9a-f]{32})(?![0-9a-zA-Z])", "key-"),
    token("mailchimp-api-key", "Mailchimp API key", r"(?<![A-Za-z0-9])(?P<s>[0-9a-f]{32}-us[0-9]{1,2})(?![0-9])", "-us"),
    # --- package registries and developer tools
    token("npm-access-token", "npm access token", r"(?<![A-Za-z0-9])(?P<s>npm_[A-Za-z0-9]{36})(?![A-Za-z0-9])", "npm_"),
    token("npmrc-auth-token", ".npmrc registry auth token", r"(?i)(?P<n>_authToken)[ \t]{0,3}=[ \t]{0,3}[\"']?(?P<s>[A-Za-z0-9_\-.+/=]{20,200})",
          "_authtoken", check=_not_template),
    token("pypi-token", "PyPI upload token", r"(?<![A-Za-z0-9])(?P<s>pypi-AgE(?:IcHlwaS5vcmc|NdGVzdC5weXBpLm9yZw)[A-Za-z0-9_\-]{50,250})", "pypi-age"),
    token("dockerhub-pat", "Docker Hub personal access token", r"(?<![A-Za-z0-9])(?P<s>dckr_pat_[A-Za-z0-9_\-]{27})(?![A-Za-z0-9_\-])", "dckr_pat_"),
    token("docker-config-auth", "Docker config registry credentials", r'"auth"\s{0,3}:\s{0,3}"(?P<s>[A-Za-z0-9+/]{8,400}={0,2})"', '"auths"',
          check=_basic_auth),
    token("rubygems-api-key", "RubyGems API key", r"(?<![A-Za-z0-9])(?P<s>rubygems_[a-f0-9]{48})(?![a-f0-9])", "rubygems_"),
    token("nuget-api-key", "NuGet API key", r"(?<![A-Za-z0-9])(?P<s>oy2[a-z0-9]{43})(?![a-z0-9])", "oy2"),
    token("hashicorp-vault-token", "HashiCorp Vault token", r"(?<![A-Za-z0-9])(?P<s>hv[sb]\.[A-Za-z0-9_\-]{90,300})", "hvs.", "hvb."),
    token("terraform-cloud-token", "Terraform Cloud API token", r"(?<![A-Za-z0-9])(?P<s>[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_\-=]{60,70})", "atlasv1"),
    token("pulumi-access-token", "Pulumi access token", r"(?<![A-Za-z0-9])(?P<s>pul-[a-f0-9]{40})(?![a-f0-9])", "pul-"),
    token("doppler-token", "Doppler token", r"(?<![A-Za-z0-9])(?P<s>dp\.(?:pt|st|sa|ct|scim)\.[A-Za-z0-9]{40,44})(?![A-Za-z0-9])", "dp.pt.", "dp.st.",
          "dp.sa.", "dp.ct."),
    token("planetscale-token", "PlanetScale token", r"(?<![A-Za-z0-9])(?P<s>pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_\-.]{32,64})", "pscale_"),
    token("huggingface-token", "Hugging Face access token", r"(?<![A-Za-z0-9])(?P<s>hf_[A-Za-z]{34})(?![A-Za-z0-9])", "hf_"),
    token("openai-api-key", "OpenAI API key", r"(?<![A-Za-z0-9])(?P<s>sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,74}T3BlbkFJ[A-Za-z0-9_\-]{20,74})",
          "t3blbkfj", severity=CRITICAL, priority=2),  # the marked legacy shape wins over openai-project-key
    token("openai-project-key", "OpenAI project, service-account or admin key",
          r"(?<![A-Za-z0-9])(?P<s>sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{80,250})(?![A-Za-z0-9_\-])", "sk-proj-", "sk-svcacct-", "sk-admin-",
          severity=CRITICAL, check=lambda s, n, p: checks.entropy(s) >= 4.0),
    token("databricks-token", "Databricks personal access token", r"(?<![A-Za-z0-9])(?P<s>dapi[0-9a-f]{32}(?:-\d)?)(?![0-9a-zA-Z])", "dapi"),
    token("anthropic-api-key", "Anthropic API key", r"(?<![A-Za-z0-9])(?P<s>sk-ant-(?:api03|admin01)-[A-Za-z0-9_\-]{93}AA)(?![A-Za-z0-9_\-])", "sk-ant-",
          severity=CRITICAL),
    # --- observability and SaaS
    token("datadog-api-key", "Datadog API or application key",
          _keyword_hex(r"(?:datadog|dd)[_\-]?(?:api|app(?:lication)?)[_\-]?key", "[0-9a-f]{40}|[0-9a-f]{32}"), "datadog", "dd_api", "dd-api", "dd_app"),
    token("new-relic-api-key", "New Relic user API key", r"(?<![A-Za-z0-9])(?P<s>NRAK-[A-Z0-9]{27})(?![A-Z0-9])", "nrak-"),
    token("sentry-auth-token", "Sentry auth token",
          r"(?<![A-Za-z0-9])(?P<s>sntrys_eyJ[A-Za-z0-9+/=_\-]{50,300}|sntryu_[a-f0-9]{64})(?![A-Za-z0-9+/=_\-])", "sntrys_", "sntryu_"),
    token("grafana-token", "Grafana service account or Cloud token",
          r"(?<![A-Za-z0-9])(?P<s>glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|glc_[A-Za-z0-9+/]{32,400}={0,2})(?![A-Za-z0-9+/=])", "glsa_", "glc_"),
    token("dynatrace-token", "Dynatrace API token", r"(?<![A-Za-z0-9])(?P<s>dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64})(?![A-Z0-9])", "dt0c01."),
    token("okta-api-token", "Okta API token", rf"(?i)(?P<n>okta[\w\-]{{0,20}}(?:token|key)){ASSIGN}(?P<s>00[A-Za-z0-9_\-]{{40}})(?![A-Za-z0-9_\-])", "okta"),
    token("twitter-bearer-token", "Twitter/X bearer token", r"(?<![A-Za-z0-9])(?P<s>A{22}[A-Za-z0-9%]{30,120})(?![A-Za-z0-9%])", "aaaaaaaaaaaaaaaaaaaaaa"),
    token("facebook-access-token", "Facebook access token", r"(?<![A-Za-z0-9])(?P<s>EAACEdEose0cBA[0-9A-Za-z]{20,200})", "eaacedeose0cba"),
    token("mapbox-secret-token", "Mapbox secret token", r"(?<![A-Za-z0-9])(?P<s>sk\.eyJ[A-Za-z0-9_\-]{20,300}\.[A-Za-z0-9_\-]{20,100})", "sk.eyj"),
    token("age-secret-key", "age encryption secret key", r"(?P<s>AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58})", "age-secret-key-1",
          severity=CRITICAL),
    # --- private keys
    pem("private-key-rsa", "RSA private key", "RSA PRIVATE KEY"),
    pem("private-key-dsa", "DSA private key", "DSA PRIVATE KEY"),
    pem("private-key-ec", "EC private key", "EC PRIVATE KEY"),
    pem("private-key-openssh", "OpenSSH private key", "OPENSSH PRIVATE KEY"),
    pem("private-key-pkcs8", "PKCS#8 private key", "PRIVATE KEY"),
    pem("private-key-encrypted", "Encrypted private key (passphrase-protected)", "ENCRYPTED PRIVATE KEY", severity=MEDIUM),
    pem("private-key-pgp", "PGP private key block", "PGP PRIVATE KEY BLOCK"),
    token("private-key-putty", "PuTTY private key", r"PuTTY-User-Key-File-\d: [a-z0-9\-]{7,30}\r?\n(?:[A-Za-z\-]+: [^\r\n]{0,200}\r?\n){1,6}(?P<s>[A-Za-z0-9+/=\r\n]{64,6000})",
          "putty-user-key-file", severity=CRITICAL),
    # --- tokens in protocols and URLs
    token("jwt", "JSON Web Token", r"(?<![A-Za-z0-9_\-])(?P<s>eyJ[A-Za-z0-9_\-]{10,1000}\.eyJ[A-Za-z0-9_\-]{10,4000}\.[A-Za-z0-9_\-]{16,1000})",
          "eyj", severity=MEDIUM, check=lambda s, n, p: checks.jwt_header(s)),
    token("database-url-password", "Database URL with a password",
          r"(?<![A-Za-z0-9])(?i:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|oracle|clickhouse|cockroachdb)"
          r"(?i:\+[a-z0-9]{1,20})?://[^\s:/@'\"`]{1,100}:(?P<s>[^\s@'\"`/]{3,200})@[^\s'\"`/]{1,200}",
          "postgres", "mysql", "mariadb", "mongodb", "redis", "amqp", "mssql", "sqlserver", "oracle", "clickhouse", "cockroach",
          check=_not_template, example=_doc_url, re2=True),
    token("url-credentials", "Credentials in a URL",
          r"(?<![A-Za-z0-9])(?i:https?|ftps?|smtps?|ldaps?|sftp|ssh|git)://[A-Za-z0-9._%\-]{1,100}:(?P<s>[^\s@'\"`/:]{3,200})@[A-Za-z0-9.\-]{1,200}",
          "://", severity=MEDIUM, check=_not_template, example=_doc_url, re2=True),
    token("jdbc-password", "JDBC URL with a password", r"(?i)jdbc:[a-z0-9]{1,20}:[^\s'\"]{0,200}?[;?&]password=(?P<s>[^;&\s'\"]{3,100})", "jdbc:", check=_not_template),
    token("http-basic-auth", "HTTP Basic credentials",
          r"(?i)authorization[\"']?[ \t]{0,3}[:=][ \t]{0,3}[\"']?Basic[ \t]{1,3}(?P<s>[A-Za-z0-9+/]{12,400}={0,2})", "authorization", severity=MEDIUM,
          check=_basic_auth),
    token("http-bearer-token", "HTTP Bearer token",
          r"(?i)authorization[\"']?[ \t]{0,3}[:=][ \t]{0,3}[\"']?Bearer[ \t]{1,3}(?P<s>[A-Za-z0-9_\-.~+/]{20,2000}=*)", "authorization", severity=MEDIUM,
          check=lambda s, n, p: checks.entropy(s) >= 3.5),
]  # fmt: skip
