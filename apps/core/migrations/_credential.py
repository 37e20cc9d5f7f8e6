"""The data step shared by core 0004 and approvals 0004: the API-token foreign key of a job or an approval
request becomes the credential reference that replaces it ("api:<token pk>", accounts.credentials), with
the token's scopes beside it; and back.

Back, only API-token references fit the foreign key: an OAuth agent's ("oauth:<application id>") has no
place in the earlier schema and is dropped, so the earlier code would run such a row as its user
(the hole these migrations close): cancel an OAuth agent's queued work before migrating back.
"""

from django.db.models import BigIntegerField, CharField, OuterRef, Subquery, Value
from django.db.models.functions import Cast, Concat, Substr

PREFIX = "api:"


def token_to_credential(model_name: str):
    def forward(apps, schema_editor):
        model, ApiToken = apps.get_model(*model_name.split(".")), apps.get_model("accounts", "ApiToken")
        scopes = ApiToken.objects.filter(pk=OuterRef("token_id")).values("scopes")[:1]
        model.objects.filter(token__isnull=False).update(
            credential=Concat(Value(PREFIX), Cast("token_id", CharField())), scopes=Subquery(scopes)
        )

    return forward


def credential_to_token(model_name: str):
    def backward(apps, schema_editor):
        model, ApiToken = apps.get_model(*model_name.split(".")), apps.get_model("accounts", "ApiToken")
        named = ApiToken.objects.filter(pk=Cast(Substr(OuterRef("credential"), len(PREFIX) + 1), BigIntegerField())).values("pk")[:1]
        model.objects.filter(credential__startswith=PREFIX).update(token_id=Subquery(named))

    return backward
