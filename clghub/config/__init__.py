"""Configuration: ``clghub.toml`` loaded into typed models, secrets resolved."""

from clghub.config.loader import (
    ConfigError,
    ConfigProblem,
    default_config_path,
    load_config,
    parse_config,
)
from clghub.config.models import ClghubConfig
from clghub.config.refs import SecretRef
from clghub.config.secrets import REDACTOR, Secret

__all__ = [
    "REDACTOR",
    "ClghubConfig",
    "ConfigError",
    "ConfigProblem",
    "Secret",
    "SecretRef",
    "default_config_path",
    "load_config",
    "parse_config",
]
