"""The vault as a service: an ASGI HTTP API (FastAPI, served by uvicorn) over the same library
and the same one door. ``vault serve`` runs it; :func:`create_app` builds it over an open vault.
"""

from vault.service.app import create_app
from vault.service.config import ServiceConfig

__all__ = ["ServiceConfig", "create_app"]
