"""Realistic true positives and near-misses for every secret rule.

Secrets are generated at run time from each provider's documented shape
(seeded, so runs are reproducible): the repository holds no token-looking
literal. Each entry: rule id -> (file name, [true positive lines], [near-miss lines]).
"""

from __future__ import annotations

import base64
import json
import random
import string

UP, LOW, DIG = string.ascii_uppercase, string.ascii_lowercase, string.digits
ALNUM = UP + LOW + DIG
URLSAFE = ALNUM + "_-"
B64 = ALNUM + "+/"
HEX = "0123456789abcdef"
B32 = UP + "234567"


class Gen:
    """Random strings of a given alphabet, reproducible per rule."""

    def __init__(self, seed: str):
        self.rnd = random.Random(seed)

    def __call__(self, alphabet: str, n: int) -> str:
        classes = [cls for cls in (UP, LOW, DIG) if any(ch in cls for ch in alphabet)]
        while True:
            value = "".join(self.rnd.choice(alphabet) for _ in range(n))
            # every character class of the alphabet present, like real tokens
            if n < 8 or all(any(ch in cls for ch in value) for cls in classes):
                return value

    def uuid(self) -> str:
        h = self(HEX, 32)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def pem(self, label: str, lines: int = 6) -> str:
        body = "\n".join(self(B64, 64) for _ in range(lines))
        return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----"


def _jwt(g: Gen) -> str:
    def enc(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    return f"{enc({'alg': 'HS256', 'typ': 'JWT'})}.{enc({'sub': g(DIG, 8), 'name': 'ops', 'iat': 1700000000})}.{g(URLSAFE, 43)}"


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def cases(seed: str = "") -> dict[str, tuple[str, list[str], list[str]]]:
    """The cases; another `seed` gives other random values of the same shapes (the bench plants many)."""

    def g(rule):
        return Gen(rule + seed)

    c: dict[str, tuple[str, list[str], list[str]]] = {}

    def add(rule, tps, misses, name="config.py"):
        c[rule] = (name, tps, misses)

    x = g("aws")
    add(
        "aws-access-key-id",
        [f"aws_access_key_id = {'AKIA' + x(B32, 16)}", f'"AccessKeyId": "{"ASIA" + x(B32, 16)}"'],
        ["aws_access_key_id = AKIA" + x(B32, 12), "aws_access_key_id = X" + "AKIA" + x(B32, 16)],
    )
    add(
        "aws-secret-access-key",
        [f"aws_secret_access_key = {x(B64, 40)}", f'AWS_SECRET_ACCESS_KEY: "{x(B64, 40)}"'],
        ['aws_secret_access_key = os.environ["AWS_SECRET_ACCESS_KEY"]', "secret_key_length = 40"],
    )
    add("aws-session-token", [f"aws_session_token = {x(B64, 300)}"], ["aws_session_token = get_session_token()"])
    add("aws-mws-key", [f"mws_token = amzn.mws.{x.uuid()}"], ["see amzn.mws.docs for the token format"])
    x = g("gcp")
    sa_key = x.pem("PRIVATE KEY", 8)
    add(
        "gcp-service-account",
        [json.dumps({"type": "service_account", "project_id": "ops", "private_key_id": x(HEX, 40), "private_key": sa_key + "\n"})],
        [json.dumps({"type": "service_account", "project_id": "ops", "private_key": ""})],
        name="sa.json",
    )
    add("gcp-api-key", [f'maps_key = "AIza{x(URLSAFE, 35)}"'], [f'maps_key = "AIza{x(URLSAFE, 20)}"'])
    add("gcp-oauth-client-secret", [f'"client_secret": "GOCSPX-{x(URLSAFE, 28)}"'], ['"client_secret_hint": "GOCSPX-prefix"'])
    add("google-oauth-access-token", [f"Authorization token ya29.{x(URLSAFE, 120)}"], ["ya29.short"])
    add("google-oauth-refresh-token", [f'refresh = "1//0{x(URLSAFE, 80)}"'], ['url = "http://host/1//0abc"'])
    x = g("azure")
    add(
        "azure-storage-account-key",
        [f"DefaultEndpointsProtocol=https;AccountName=ops;AccountKey={x(B64, 86)}==;EndpointSuffix=core.windows.net"],
        ["DefaultEndpointsProtocol=https;AccountName=ops;AccountKey=<your-key>"],
    )
    add(
        "azure-shared-access-key",
        [f"Endpoint=sb://ops.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey={x(B64, 43)}="],
        ["SharedAccessKeyName=RootManageSharedAccessKey"],
    )
    add(
        "azure-sas-token",
        [f"https://ops.blob.core.windows.net/c?sv=2022-11-02&ss=b&srt=o&sp=r&se=2030-01-01&sig={x(ALNUM, 43)}%3D"],
        ["https://ops.blob.core.windows.net/c?comp=list&sig=abc"],
    )
    add("azure-ad-client-secret", [f'client_secret = "{x(ALNUM, 3)}8Q~{x(ALNUM + "_~.", 34)}"'], ['note = "Q~ is the Entra secret marker"'])
    add("azure-devops-pat", [f'AZURE_DEVOPS_PAT = "{x(LOW + "234567", 52)}"'], ['azure_devops_pat = ""'])
    add("alibaba-access-key-id", [f"ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI{x(ALNUM, 20)}"], [f"id = LTAI{x(ALNUM, 10)}"])
    add("digitalocean-token", [f'DO_TOKEN = "dop_v1_{x(HEX, 64)}"'], [f'DO_TOKEN = "dop_v1_{x(HEX, 10)}"'])
    add("heroku-api-key", [f'HEROKU_API_KEY = "{x.uuid()}"'], ['heroku_app_name = "ops-console"'])
    add("cloudflare-api-token", [f'CLOUDFLARE_API_TOKEN = "{x(URLSAFE, 40)}"'], ['cloudflare_api_token = ""'])
    add("flyio-token", [f"FLY_API_TOKEN=fo1_{x(URLSAFE, 43)}"], ["fo1_short"])
    x = g("vcs")
    add(
        "github-pat",
        [f'GITHUB_TOKEN = "ghp_{x(ALNUM, 36)}"', f"git clone https://ghp_{x(ALNUM, 36)}@github.com/o/r"],
        [f"ghp_{x(ALNUM, 20)}", f"abcghp_{x(ALNUM, 36)}"],
    )
    add("github-oauth-token", [f"token: gho_{x(ALNUM, 36)}"], [f"gho_{x(ALNUM, 12)}"])
    add("github-app-token", [f"GH_INSTALLATION_TOKEN=ghs_{x(ALNUM, 36)}", f"user_token = 'ghu_{x(ALNUM, 36)}'"], ["ghs_notatoken"])
    add("github-refresh-token", [f"refresh_token = 'ghr_{x(ALNUM, 76)}'"], ["ghr_short"])
    add("github-fine-grained-pat", [f"GH_PAT=github_pat_{x(ALNUM, 22)}_{x(ALNUM, 59)}"], ["prefix is github_pat_ followed by 82 chars"])
    add("gitlab-pat", [f"GITLAB_TOKEN=glpat-{x(URLSAFE, 20)}"], [f"glpat-{x(ALNUM, 10)}"])
    add("gitlab-pipeline-trigger-token", [f"TRIGGER=glptt-{x(HEX, 40)}"], [f"glptt-{x(HEX, 12)}"])
    add("gitlab-runner-token", [f"runner_token: glrt-{x(URLSAFE, 20)}"], ["glrt-short"])
    add("gitlab-deploy-token", [f"DEPLOY_TOKEN=gldt-{x(URLSAFE, 20)}"], ["gldt-short"])
    add("atlassian-api-token", [f"JIRA_TOKEN=ATATT3{x(URLSAFE, 186)}"], [f"ATATT3{x(ALNUM, 20)}"])
    add("linear-api-key", [f"LINEAR_KEY=lin_api_{x(ALNUM, 40)}"], ["lin_api_docs"])
    add("postman-api-key", [f"POSTMAN_KEY=PMAK-{x(HEX, 24)}-{x(HEX, 34)}"], [f"PMAK-{x(HEX, 24)}"])
    x = g("chat")
    add("slack-bot-token", [f"SLACK_BOT_TOKEN=xoxb-{x(DIG, 12)}-{x(DIG, 13)}-{x(ALNUM, 24)}"], ["SLACK_BOT_TOKEN=xoxb-your-token-here"])
    add("slack-user-token", [f"xoxp-{x(DIG, 12)}-{x(DIG, 12)}-{x(DIG, 13)}-{x(HEX, 32)}"], ["xoxp-123-456"])
    add("slack-app-token", [f"SLACK_APP_TOKEN=xapp-1-A{x(UP + DIG, 10)}-{x(DIG, 13)}-{x(HEX, 64)}"], ["xapp-1-abc"])
    add("slack-legacy-token", [f"legacy = 'xoxs-{x(DIG, 12)}-{x(ALNUM, 40)}'"], ["xoxs-"])
    add(
        "slack-webhook",
        [f"https://hooks.slack.com/services/T{x(UP + DIG, 9)}/B{x(UP + DIG, 9)}/{x(ALNUM, 24)}"],
        ["https://hooks.slack.com/services/"],
    )
    add(
        "discord-bot-token",
        [f"DISCORD_TOKEN = 'M{x(ALNUM, 23)}.{x(URLSAFE, 6)}.{x(URLSAFE, 27)}'"],
        ["import discord  # discord.py client"],
    )
    add("discord-webhook", [f"https://discord.com/api/webhooks/{x(DIG, 18)}/{x(URLSAFE, 68)}"], ["https://discord.com/api/webhooks/"])
    add(
        "teams-webhook",
        [f"https://ops.webhook.office.com/webhookb2/{x.uuid()}@{x.uuid()}/IncomingWebhook/{x(ALNUM, 32)}/{x.uuid()}"],
        ["https://ops.webhook.office.com/webhookb2/"],
    )
    add("telegram-bot-token", [f'TELEGRAM_BOT_TOKEN = "{x(DIG, 9)}:AA{x(URLSAFE, 33)}"'], ["bot_id = 123456789"])
    x = g("pay")
    add("stripe-secret-key", [f"STRIPE_KEY=sk_live_{x(ALNUM, 24)}"], [f"sk_live_{x(ALNUM, 10)}"])
    add("stripe-restricted-key", [f"rk_live_{x(ALNUM, 24)}"], ["rk_live_"])
    add("stripe-test-key", [f"STRIPE_TEST_KEY=sk_test_{x(ALNUM, 24)}"], ["sk_test_short"])
    add("stripe-webhook-secret", [f"STRIPE_WEBHOOK_SECRET=whsec_{x(ALNUM, 32)}"], ["whsec_"])
    add("square-access-token", [f"SQUARE_TOKEN=EAAA{x(URLSAFE, 60)}", f"sq0atp-{x(URLSAFE, 22)}"], ["EAAA is the prefix"])
    add("square-oauth-secret", [f"sq0csp-{x(URLSAFE, 43)}"], ["sq0csp-"])
    add("shopify-token", [f"SHOPIFY_TOKEN=shpat_{x(HEX, 32)}"], ["shpat_"])
    # structured families are found without a telling name nearby
    add(
        "twilio-api-key",
        [f'TWILIO_API_KEY = "SK{x(HEX, 32)}"', f'conf["k1"] = "SK{x(HEX, 32)}"'],
        ['twilio_sid = "SK123"', f"SKU{x(HEX, 32)}"],
    )
    add("twilio-auth-token", [f'TWILIO_AUTH_TOKEN = "{x(HEX, 32)}"'], ['twilio_auth_token = os.environ["TWILIO_AUTH_TOKEN"]'])
    add("sendgrid-api-key", [f"SENDGRID_API_KEY=SG.{x(URLSAFE, 22)}.{x(URLSAFE, 43)}"], ["SG.example"])
    add(
        "mailgun-api-key",
        [f'MAILGUN_API_KEY = "key-{x(HEX, 32)}"', f'client = Client(auth=("api", "key-{x(HEX, 32)}"))'],
        ['mailgun_domain = "mg.ops.internal"', f'cache_key = "api-key-{x(HEX, 32)}"'],
    )
    add("mailchimp-api-key", [f'MAILCHIMP_KEY = "{x(HEX, 32)}-us12"'], [f'region = "{x(HEX, 32)}-usa"'])
    x = g("dev")
    add("npm-access-token", [f"NPM_TOKEN=npm_{x(ALNUM, 36)}"], ["npm_config_registry=https://registry.npmjs.org/"])
    add(
        "npmrc-auth-token",
        [f"//registry.npmjs.org/:_authToken={x(ALNUM, 36)}"],
        ["//registry.npmjs.org/:_authToken=${NPM_TOKEN}"],
        name=".npmrc",
    )
    add("pypi-token", [f"password = pypi-AgEIcHlwaS5vcmc{x(URLSAFE, 70)}"], ["pypi-AgEIcHlwaS5vcmc"], name=".pypirc")
    add("dockerhub-pat", [f"DOCKER_PAT=dckr_pat_{x(URLSAFE, 27)}"], ["dckr_pat_x"])
    add(
        "docker-config-auth",
        [json.dumps({"auths": {"registry.ops": {"auth": _basic("ci", x(ALNUM, 16))}}})],
        [json.dumps({"auths": {"registry.ops": {"auth": base64.b64encode(b"nothing here").decode()}}})],
        name="config.json",
    )
    add("rubygems-api-key", [f"GEM_HOST_API_KEY=rubygems_{x(HEX, 48)}"], ["rubygems_"])
    add("nuget-api-key", [f"NUGET_KEY=oy2{x(LOW + DIG, 43)}"], ["oy2short"])
    add("hashicorp-vault-token", [f"VAULT_TOKEN=hvs.{x(URLSAFE, 95)}"], ["hvs.short"])
    add("terraform-cloud-token", [f'token = "{x(ALNUM, 14)}.atlasv1.{x(URLSAFE, 67)}"'], ["see .atlasv1. tokens"])
    add("pulumi-access-token", [f"PULUMI_ACCESS_TOKEN=pul-{x(HEX, 40)}"], ["pul-short"])
    add("doppler-token", [f"DOPPLER_TOKEN=dp.pt.{x(ALNUM, 43)}"], ["dp.pt.short"])
    add("planetscale-token", [f"PLANETSCALE_TOKEN=pscale_tkn_{x(URLSAFE, 43)}"], ["pscale_tkn_x"])
    add("huggingface-token", [f"HF_TOKEN=hf_{x(UP + LOW, 34)}"], ["hf_hub_download"])
    add("openai-api-key", [f"OPENAI_API_KEY=sk-proj-{x(URLSAFE, 40)}T3BlbkFJ{x(URLSAFE, 40)}"], ["sk-proj-short"])
    add(
        "openai-project-key",
        [f'client = OpenAI(api_key="sk-proj-{x(URLSAFE, 156)}")', f"v = sk-svcacct-{x(URLSAFE, 120)}"],
        ["sk-proj-short", f"sk-proj-{'a' * 100}"],
    )
    add(
        "databricks-token",
        [f'host_conf = ("https://adb.azuredatabricks.net", "dapi{x(HEX, 32)}")'],
        [f"dapi{x(HEX, 12)}", f"rapid{x(HEX, 32)}"],
    )
    add("anthropic-api-key", [f"ANTHROPIC_API_KEY=sk-ant-api03-{x(URLSAFE, 93)}AA"], ["sk-ant-api03-short"])
    x = g("saas")
    add("datadog-api-key", [f'DD_API_KEY = "{x(HEX, 32)}"'], ['dd_api_key = ""'])
    add("new-relic-api-key", [f"NEW_RELIC_API_KEY=NRAK-{x(UP + DIG, 27)}"], ["NRAK-SHORT"])
    add("sentry-auth-token", [f"SENTRY_AUTH_TOKEN=sntryu_{x(HEX, 64)}"], ["sntryu_"])
    add("grafana-token", [f"GRAFANA_TOKEN=glsa_{x(ALNUM, 32)}_{x(HEX, 8)}"], ["glsa_short"])
    add("dynatrace-token", [f"DT_TOKEN=dt0c01.{x(UP + DIG, 24)}.{x(UP + DIG, 64)}"], ["dt0c01.SHORT"])
    add("okta-api-token", [f'OKTA_API_TOKEN = "00{x(URLSAFE, 40)}"'], ['okta_api_token = ""'])
    add("twitter-bearer-token", [f"TWITTER_BEARER={'A' * 22}{x(ALNUM, 80)}"], ["A" * 22])
    add("facebook-access-token", [f"FB_TOKEN=EAACEdEose0cBA{x(ALNUM, 60)}"], ["EAACEdEose0cBA"])
    add("mapbox-secret-token", [f"MAPBOX_TOKEN=sk.eyJ{x(URLSAFE, 60)}.{x(URLSAFE, 22)}"], ["sk.eyJ"])
    add("age-secret-key", [f"AGE-SECRET-KEY-1{x('QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L', 58)}"], ["AGE-SECRET-KEY-1SHORT"])
    x = g("keys")
    for rule, label in [
        ("private-key-rsa", "RSA PRIVATE KEY"),
        ("private-key-dsa", "DSA PRIVATE KEY"),
        ("private-key-ec", "EC PRIVATE KEY"),
        ("private-key-openssh", "OPENSSH PRIVATE KEY"),
        ("private-key-pkcs8", "PRIVATE KEY"),
        ("private-key-encrypted", "ENCRYPTED PRIVATE KEY"),
        ("private-key-pgp", "PGP PRIVATE KEY BLOCK"),
    ]:
        add(
            rule,
            [x.pem(label)],
            [f"Paste the key between -----BEGIN {label}----- and -----END {label}-----.", x.pem("PUBLIC KEY")],
            name="key.pem",
        )
    putty = "PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\nComment: deploy\nPublic-Lines: 2\n" + "\n".join(x(B64, 64) for _ in range(4))
    add("private-key-putty", [putty], ["PuTTY-User-Key-File-2 is the format of .ppk files"], name="deploy.ppk")
    x = g("proto")
    add("jwt", [f"token = {_jwt(x)}"], [f"eyJ{x(URLSAFE, 20)}.eyJ{x(URLSAFE, 20)}.{x(URLSAFE, 20)}", "header = eyJhbGciOiJIUzI1NiJ9"])
    add(
        "database-url-password",
        [
            f"DATABASE_URL=postgres://app:{x(ALNUM, 16)}@db.internal:5432/app",
            f'MONGO = "mongodb+srv://ops:{x(ALNUM, 12)}@c0.mongodb.net/db"',
        ],
        ["DATABASE_URL=postgres://app:${DB_PASSWORD}@db/app", "DATABASE_URL=postgres://app@db/app"],
    )
    add(
        "url-credentials",
        [f"git remote add ci https://deploy:{x(ALNUM, 20)}@git.ops.internal/repo.git"],
        ["https://git.ops.internal:8443/repo", "ssh://git@git.ops.internal/repo.git"],
    )
    add(
        "jdbc-password",
        [f"jdbc:sqlserver://db:1433;databaseName=app;user=sa;password={x(ALNUM, 16)}"],
        ["jdbc:postgresql://db/app?user=app"],
    )
    add("http-basic-auth", [f"Authorization: Basic {_basic('admin', x(ALNUM, 12))}"], ['Authorization: Basic realm="ops"'])
    add(
        "http-bearer-token",
        [f"Authorization: Bearer {x(URLSAFE, 40)}"],
        ["Authorization: Bearer ${TOKEN}", "Authorization: Bearer <token>"],
    )
    x = g("generic")
    add(
        "generic-password",
        [f'db_password = "{x(ALNUM, 14)}"', f'"password": "{x(ALNUM + "!#%", 12)}"'],
        ['password = os.environ["DB_PASSWORD"]', 'password: "{{ vault_db_password }}"', "PASSWORD_MIN_LENGTH = 12"],
    )
    add("generic-password-config", [f"DB_PASSWORD={x(ALNUM, 14)}"], ["DB_PASSWORD=${SECRET_FROM_VAULT}"], name=".env")
    add(
        "generic-secret",
        [f'client_secret = "{x(ALNUM, 24)}"', f"signing_key: '{x(ALNUM + '-_', 30)}'"],
        ["client_secret = settings.CLIENT_SECRET", 'token_type = "bearer"'],
    )
    add("generic-secret-config", [f"API_TOKEN={x(ALNUM, 32)}"], ["API_TOKEN=${API_TOKEN}", "api_token: {{ api_token }}"], name=".env")
    add(
        "high-entropy-assignment",
        [f'cache_buster = "{x(ALNUM, 40)}"', f"LICENSE: {x(B64, 48)}"],
        [
            'request_id = "550e8400-e29b-41d4-a716-446655440000"',
            'commit = "da39a3ee5e6b4b0d3255bfef95601890afd80709"',
            'handler = "getUserAccountSettingsByIdentifier"',
            '"integrity": "sha512-' + x(B64, 86) + '=="',
        ],
    )
    return c
