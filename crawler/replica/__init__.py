"""The replica of the Tianjin Updates site: a deterministic generator and a loopback HTTP server."""

from __future__ import annotations

from .generate import DEFAULT_TEMPLATES, HOLDOUT_TEMPLATES, TEMPLATES
from .model import (
    DOWNLOAD_MAXSIZE,
    DOWNLOAD_TIMEOUT,
    RETRY_TIMES,
    ExpectedArticle,
    Fault,
    FaultKind,
    ReplicaArticle,
    ReplicaImage,
    ReplicaResponse,
)
from .server import ReplicaServer, ServedRequest
from .similarity import shingle_jaccard
from .site import MIRROR_PREFIX, ReplicaSite

__all__ = [
    "DEFAULT_TEMPLATES",
    "DOWNLOAD_MAXSIZE",
    "DOWNLOAD_TIMEOUT",
    "HOLDOUT_TEMPLATES",
    "MIRROR_PREFIX",
    "RETRY_TIMES",
    "TEMPLATES",
    "ExpectedArticle",
    "Fault",
    "FaultKind",
    "ReplicaArticle",
    "ReplicaImage",
    "ReplicaResponse",
    "ReplicaServer",
    "ReplicaSite",
    "ServedRequest",
    "shingle_jaccard",
]
