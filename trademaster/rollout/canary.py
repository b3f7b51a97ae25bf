"""A new champion goes live as a canary, is judged on live traffic, then stays or goes.

``begin``: the gateway pins every user to the served (previous) version, Triton loads the new
one beside it, and once the gateway sees it, ``canary_weight`` of the users move to it, with
the previous version answering their requests again as a shadow (for agreement). MLflow marks
the version with the ``canary`` alias.

``conclude``: the analysis (``analysis.judge``) waits for ``canary_min_requests`` canary answers
or ``canary_max_wait_s``, whichever comes first, then
- promotes: every user on the new version; the ``canary`` alias is removed, the version is
  tagged ``canary=promoted`` and stays ``champion``;
- or rolls back: every user back on the previous version, ``champion`` moves back to it, the
  new version is tagged ``canary=rolled_back`` with the reason, its folder leaves the model
  repository (kept under ``<data_dir>/rolled_back/``) and Triton unloads it.

At no point does a request reach a version that is not loaded: the gateway is pinned before
Triton's set of versions changes, and unpinned only once the gateway has seen the change.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exporters.registered import publish_served_versions, versions_served
from trademaster import registry
from trademaster.contract.deployment_status import ModelDeployment, record_status
from trademaster.rollout.analysis import CanaryThresholds, Verdict, gather, judge
from trademaster.rollout.gateway_admin import GatewayAdmin
from trademaster.settings import PipelineSettings

log = logging.getLogger(__name__)

CANARY_ALIAS = "canary"
POLL_S = 5.0


@dataclass(frozen=True)
class CanaryPlan:
    model_name: str
    previous_version: int
    canary_version: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "previous_version": self.previous_version,
            "canary_version": self.canary_version,
        }


def why_no_canary(settings: PipelineSettings, model_name: str, previous: int | None) -> str:
    """Empty when a canary can run; otherwise why the new version goes live directly."""
    if not settings.gateway_url:
        return "no gateway configured (TRADEMASTER_GATEWAY_URL)"
    if previous is None:
        return "first version: nothing to compare it with"
    if versions_served(settings.model_repository, model_name) < 2:
        return "its Triton config serves one version at a time"
    with _admin(settings) as gateway:
        if not gateway.reachable():
            return f"the gateway at {settings.gateway_url} does not answer"
    return ""


def _admin(settings: PipelineSettings) -> GatewayAdmin:
    return GatewayAdmin(settings.gateway_url, settings.gateway_api_key.get_secret_value())


def begin(settings: PipelineSettings, plan: CanaryPlan, load: Callable[[], None]) -> None:
    name, old, new = plan.model_name, plan.previous_version, plan.canary_version
    with _admin(settings) as gateway:
        gateway.set_rollout(name, primary_version=old)
        time.sleep(settings.gateway_propagation_s)  # every worker pinned before Triton changes
        load()
        gateway.wait_for_versions(name, present=frozenset({old, new}))
        time.sleep(settings.gateway_propagation_s)  # every worker sees the new version
        gateway.set_rollout(
            name,
            primary_version=old,
            canary_version=new,
            canary_weight=settings.canary_weight,
            shadow_version=old,
        )
    registry.set_alias(settings, name, CANARY_ALIAS, new)
    registry.tag_version(settings, name, new, {"canary": "running"})
    log.info(
        "%s v%d is live as a canary for %.0f%% of users (v%d serves the rest)",
        name,
        new,
        settings.canary_weight * 100,
        old,
    )


def analyse(settings: PipelineSettings, plan: CanaryPlan) -> tuple[Verdict, dict[str, Any]]:
    """Watches the canary until enough answers or the time limit, then judges it."""
    limits = CanaryThresholds(
        settings.canary_min_requests,
        settings.canary_max_error_rate,
        settings.canary_max_latency_ratio,
        settings.canary_max_disagreement,
    )
    started = time.monotonic()
    with _admin(settings) as gateway:
        before = gateway.snapshot()
        while True:
            time.sleep(POLL_S)
            evidence = gather(
                before,
                gateway.snapshot(),
                plan.model_name,
                plan.previous_version,
                plan.canary_version,
            )
            waited = time.monotonic() - started
            log.info(
                "canary %s v%d: %.0f/%d answers after %.0f s",
                plan.model_name,
                plan.canary_version,
                evidence.canary.answers,
                limits.min_requests,
                waited,
            )
            if evidence.canary.answers >= limits.min_requests:
                break
            if waited >= settings.canary_max_wait_s:
                break
    verdict = judge(evidence, limits)
    return verdict, {**evidence.as_dict(), "analysis_s": round(time.monotonic() - started, 1)}


def conclude(settings: PipelineSettings, plan: CanaryPlan) -> dict[str, Any]:
    verdict, evidence = analyse(settings, plan)
    for line in verdict.reasons:
        log.info("  %s", line)
    if verdict.promote:
        promote(settings, plan, verdict.summary)
    else:
        roll_back(settings, plan, verdict.summary)
    return {
        **plan.as_dict(),
        "promoted": verdict.promote,
        "reason": verdict.summary,
        "evidence": evidence,
    }


def promote(settings: PipelineSettings, plan: CanaryPlan, reason: str) -> None:
    name, new = plan.model_name, plan.canary_version
    with _admin(settings) as gateway:
        gateway.set_rollout(name)  # every user on the newest version: the canary
    registry.remove_alias(settings, name, CANARY_ALIAS)
    registry.tag_version(settings, name, new, {"canary": "promoted", "canary_reason": reason})
    log.info("%s v%d promoted after its canary", name, new)


def roll_back(settings: PipelineSettings, plan: CanaryPlan, reason: str) -> None:
    name, old, new = plan.model_name, plan.previous_version, plan.canary_version
    with _admin(settings) as gateway:
        gateway.set_rollout(name, primary_version=old)
        time.sleep(settings.gateway_propagation_s)  # no worker sends users to it any more
        registry.set_alias(settings, name, registry.CHAMPION, old)
        registry.remove_alias(settings, name, CANARY_ALIAS)
        registry.tag_version(
            settings, name, new, {"canary": "rolled_back", "canary_reason": reason}
        )
        retire_version(settings, name, new)
        record_status(
            settings.model_repository,
            ModelDeployment.now(name, True, old, f"champion v{old}; v{new} rolled back"),
        )
        _reload(settings, name)
        gateway.wait_for_versions(name, present=frozenset({old}), absent=frozenset({new}))
        time.sleep(settings.gateway_propagation_s)  # every worker has seen it go
        gateway.set_rollout(name)
    log.warning("%s v%d rolled back to v%d: %s", name, new, old, reason)


def retire_version(settings: PipelineSettings, name: str, version: int) -> Path:
    """Moves the version's folder out of the model repository (one rename), so no Triton
    serves it again; it is kept under ``<data_dir>/rolled_back/``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    target = settings.resolved_data_dir / "rolled_back" / name / f"{version}-{stamp}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(settings.model_repository / name / str(version), target)
    return target


def _reload(settings: PipelineSettings, name: str) -> None:
    from trademaster.launchers.deploy import load_into_triton

    publish_served_versions(settings.model_repository, name)
    if settings.triton_url:
        load_into_triton(settings.triton_url, name)
