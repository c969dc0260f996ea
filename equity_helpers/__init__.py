"""Helpers behind the health-inequalities playbook.

The public API is re-exported here; nothing runs at import time.
"""

import logging

from ._version import __version__

# A library logs, it does not print; the CLI and notebooks decide what to show.
logging.getLogger("equity_helpers").addHandler(logging.NullHandler())

from .config import ServiceConfig, load_config  # noqa: E402
from .errors import CATALOGUE, ConfigError, ExtractError, PlaybookError  # noqa: E402
from .extract import prepare, read_extract  # noqa: E402
from .service import Service, open_service  # noqa: E402

__all__ = [
    "__version__",
    "CATALOGUE",
    "ConfigError",
    "ExtractError",
    "PlaybookError",
    "Service",
    "ServiceConfig",
    "load_config",
    "open_service",
    "prepare",
    "read_extract",
]
