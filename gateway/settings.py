"""The gateway's one typed settings object (environment prefix ``GATEWAY_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from trademaster.settings import PROJECT_ROOT


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    log_level: Literal["debug", "info", "warning", "error"] = "warning"

    triton_grpc_url: str = Field(default="127.0.0.1:8001", description="Triton gRPC host:port")
    triton_timeout_s: float = Field(default=2.0, gt=0, le=60)
    model_refresh_interval_s: float = Field(
        default=2.0, gt=0, description="How often the served model versions are re-read"
    )
    required_models: list[str] = Field(
        default=["risk-assessment-model"], description="/ready stays 503 until these are loaded"
    )

    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Prediction cache")
    redis_timeout_s: float = Field(default=0.25, gt=0, le=10)
    cache_ttl_s: int = Field(default=300, ge=1)

    feature_store_root: Path = Field(
        default=PROJECT_ROOT / "feature_repo",
        description="Folder whose data/registry.db is the Feast registry",
    )
    feast_redis: str = Field(
        default="127.0.0.1:6379", description="Feast online store, host:port[,db=N]"
    )

    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
