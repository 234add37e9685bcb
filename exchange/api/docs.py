"""The interactive API documentation at ``/docs``, served offline.

Swagger UI's script and style sheet are files of this package (``static/swagger-ui``, whose
README names the version), served under :data:`ASSETS_PATH`: FastAPI's own ``/docs`` loads
them from a CDN, which a machine without the Internet cannot reach, and shows a blank page.
ReDoc, which would need the same, is not served; ``/openapi.json`` is the document itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS_PATH", "DOCS_PATH", "install_docs"]

DOCS_PATH: Final = "/docs"
ASSETS_PATH: Final = "/docs/assets"
ASSETS_DIR: Final = Path(__file__).parent / "static" / "swagger-ui"


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at :data:`DOCS_PATH` for ``app.openapi_url``, its assets from the
    package. ``app`` must be created with ``docs_url=None`` (and ``redoc_url=None``)."""
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    openapi_url = app.openapi_url
    assert openapi_url is not None, "the docs page shows the OpenAPI document"

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
            # No badge from the online validator: it would call out to the Internet.
            swagger_ui_parameters={"validatorUrl": None},
        )
