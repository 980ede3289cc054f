"""A small Python client for ModelGate's REST API, for pipelines (issue 16).

It talks HTTP only (it imports no ModelGate app)::

    from modelgate import ModelGate

    gate = ModelGate("https://modelgate.example.com")  # token from MODELGATE_TOKEN
    version = gate.register(fitted, model="credit-default", training_data=frame,
                            target="default", metrics={"roc_auc": 0.81})
    estimator = gate.load("credit-default@production")

Every refusal is a :class:`ModelGateError` carrying the server's error ``code``,
``message``, ``details`` and HTTP ``status``.
"""

from modelgate.api import ModelGate, ModelGateError, Timeout, UntrustedArtifact

__all__ = ["ModelGate", "ModelGateError", "Timeout", "UntrustedArtifact"]
__version__ = "0.1.0"
