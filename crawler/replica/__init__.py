"""The replica of the Tianjin Updates site: a deterministic generator and a loopback HTTP server."""

from __future__ import annotations

from .generate import DEFAULT_TEMPLATES, HOLDOUT_TEMPLATES, TEMPLATES
from .model import ExpectedArticle, Fault, FaultKind, ReplicaArticle, ReplicaImage, ReplicaResponse
from .server import ReplicaServer
from .similarity import shingle_jaccard
from .site import ReplicaSite

__all__ = [
    "DEFAULT_TEMPLATES",
    "HOLDOUT_TEMPLATES",
    "TEMPLATES",
    "ExpectedArticle",
    "Fault",
    "FaultKind",
    "ReplicaArticle",
    "ReplicaImage",
    "ReplicaResponse",
    "ReplicaServer",
    "ReplicaSite",
    "shingle_jaccard",
]
