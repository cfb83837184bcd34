"""Settings: funnelsync.toml (+ ${ENV} interpolation) -> validated, frozen `Settings`. Imports nothing internal."""
from config.settings import (
    MODEL_KEYS,
    SOURCE_TYPES,
    ConfigError,
    Settings,
    find_config,
    is_secret,
    load,
    parse,
    redacted,
)

__all__ = ["ConfigError", "MODEL_KEYS", "SOURCE_TYPES", "Settings", "find_config", "is_secret", "load", "parse",
           "redacted"]
