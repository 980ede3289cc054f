"""OpenAPI extensions (loaded by CommonConfig.ready)."""

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme


class ModelGateTokenScheme(KnoxTokenScheme):
    target_class = "common.authentication.TokenAuthentication"
    name = "tokenAuth"
