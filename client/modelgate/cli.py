"""``modelgate``: the client's functions for pipelines written in shell.

    modelgate register credit-default model.skops --training-dataset 12 --target default
    modelgate status credit-default
    modelgate retrain credit-default --reason "new quarter"
    modelgate deploy credit-default production 4 --strategy canary --steps 5,25,50,100 --wait
    modelgate timeline credit-default --kind deployment --kind rollback
    modelgate download credit-default@production -o model.skops

The server and token come from ``--url``/``--token`` or ``$MODELGATE_URL`` and
``$MODELGATE_TOKEN``. Answers are JSON on stdout; a refusal prints
``error <code>: <message>`` on stderr and exits 1 (2 for a timeout).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from typing import Any

from modelgate.api import ModelGate, ModelGateError, Timeout


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelgate", description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="the server (default: $MODELGATE_URL)")
    parser.add_argument("--token", help="an API token (default: $MODELGATE_TOKEN)")
    parser.add_argument("--serve-url", help="the serving endpoint (default: $MODELGATE_SERVE_URL)")
    commands = parser.add_subparsers(dest="command", required=True)

    register = commands.add_parser("register", help="register a saved .skops artifact")
    register.add_argument("model")
    register.add_argument("artifact", help="path of the .skops file")
    register.add_argument("--training-dataset", type=int)
    register.add_argument("--target", default="")
    register.add_argument("--metrics", default="{}", help='JSON, e.g. {"roc_auc": 0.8}')
    register.add_argument("--parent", type=int)
    register.add_argument("--run-id", default="")
    register.add_argument("--commit", default="")
    register.add_argument("--description", default="")
    register.add_argument("--no-wait", action="store_true", help="do not wait for validation")
    register.add_argument("--timeout", type=float, default=300)

    status = commands.add_parser("status", help="a model's versions, aliases and latest runs")
    status.add_argument("model")

    retrain = commands.add_parser("retrain", help="ask for a retraining run")
    retrain.add_argument("model")
    retrain.add_argument("--reason", default="")
    retrain.add_argument("--strategy")
    retrain.add_argument("--force", action="store_true")

    deploy = commands.add_parser("deploy", help="deploy a version to an environment")
    deploy.add_argument("model")
    deploy.add_argument("environment")
    deploy.add_argument("version", type=int)
    deploy.add_argument(
        "--strategy", default="direct", choices=["direct", "blue_green", "canary", "shadow"]
    )
    deploy.add_argument("--steps", help="canary: traffic percentages, e.g. 5,25,50,100")
    deploy.add_argument("--step-seconds", type=float, help="canary: how long each step is held")
    deploy.add_argument("--wait", action="store_true", help="wait until the deployment ends")
    deploy.add_argument("--timeout", type=float, default=300)

    timeline = commands.add_parser(
        "timeline", help="a model's alerts, runs, versions, reviews, deployments, rollbacks"
    )
    timeline.add_argument("model")
    timeline.add_argument("--kind", action="append", default=[], help="repeat to keep several")
    timeline.add_argument("--since", help="ISO 8601, e.g. 2026-12-01T00:00:00Z")

    download = commands.add_parser("download", help="download a version's artifact, checked")
    download.add_argument("reference", help="model@alias or model@N")
    download.add_argument("-o", "--output", required=True)
    return parser


def _run(gate: ModelGate, args: argparse.Namespace) -> Any:
    if args.command == "register":
        try:
            metrics = json.loads(args.metrics)
        except ValueError:
            raise ModelGateError("invalid", "--metrics must be a JSON object.") from None
        source = (
            {"run_id": args.run_id, "commit": args.commit} if args.run_id or args.commit else None
        )
        return gate.register(
            args.artifact,
            model=args.model,
            training_data=args.training_dataset,
            target=args.target,
            metrics=metrics,
            parent=args.parent,
            source=source,
            description=args.description,
            wait=not args.no_wait,
            wait_timeout=args.timeout,
        )
    if args.command == "status":
        return gate.status(args.model)
    if args.command == "retrain":
        return gate.retrain(
            args.model, reason=args.reason, strategy=args.strategy, force=args.force or None
        )
    if args.command == "deploy":
        plan: dict[str, Any] = {}
        if args.steps:
            try:
                plan["steps"] = [json.loads(step) for step in args.steps.split(",")]
            except ValueError:  # the server checks the rest (increasing, ending at 100)
                raise ModelGateError("invalid", "--steps are numbers, e.g. 5,25,50,100.") from None
        if args.step_seconds is not None:
            plan["step_seconds"] = args.step_seconds
        return gate.deploy(
            args.model,
            args.environment,
            args.version,
            strategy=args.strategy,
            wait=args.wait,
            wait_timeout=args.timeout,
            **plan,
        )
    if args.command == "timeline":
        return gate.timeline(args.model, kinds=args.kind, since=args.since)
    if args.command == "download":
        version = gate.resolve(args.reference)
        blob = gate.request("GET", version["artifact"]["download_url"])
        if hashlib.sha256(blob).hexdigest() != version["artifact"]["sha256"]:
            raise ModelGateError("digest_mismatch", "The downloaded artifact's SHA-256 differs.")
        with open(args.output, "wb") as handle:
            handle.write(blob)
        return {"version": version["number"], "sha256": version["artifact"]["sha256"]}
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        gate = ModelGate(args.url, args.token, serve_url=args.serve_url)
        answer = _run(gate, args)
    except Timeout as exc:
        print(f"error {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    except ModelGateError as exc:
        print(f"error {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    json.dump(answer, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    if args.command == "register" and answer.get("status") == "failed":
        return 1
    if args.command == "deploy" and answer.get("state") in ("failed", "rolled_back", "aborted"):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
