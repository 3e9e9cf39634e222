"""A browsable page of the merged API: Swagger UI over /api/v1/openapi.json, served offline.

The Swagger UI assets come from the fastapi-offline package (PyPI; Swagger UI 5, which renders
OpenAPI 3.1), read once from its installed files, so the page works on a machine without internet
and without any CDN. The page runs no inline script, so a strict Content-Security-Policy holds.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

_ASSETS = {
    "swagger-ui-bundle.js": b"text/javascript; charset=utf-8",
    "swagger-ui.css": b"text/css; charset=utf-8",
    "favicon.png": b"image/png",
}
_CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

Page = tuple[bytes, bytes, list[tuple[bytes, bytes]]]


@cache
def _asset(name: str) -> bytes:
    return (resources.files("fastapi_offline") / "static" / name).read_bytes()


class DocsPages:
    """``prefix`` (e.g. /docs) serves the page; ``prefix/<asset>`` its scripts and styles."""

    def __init__(self, prefix: str, openapi_url: str, title: str = "yiwang API") -> None:
        self.prefix = prefix.rstrip("/")
        self.openapi_url = openapi_url
        self.title = title

    def _html(self) -> bytes:
        p = self.prefix
        return f"""<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{self.title}</title>
<link rel="icon" type="image/png" href="{p}/favicon.png">
<link rel="stylesheet" href="{p}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{p}/swagger-ui-bundle.js"></script>
<script src="{p}/init.js"></script>
</body>
</html>
""".encode()

    def _init_js(self) -> bytes:
        options = {
            "url": self.openapi_url,
            "dom_id": "#swagger-ui",
            "deepLinking": True,
            "displayRequestDuration": True,
            "persistAuthorization": False,
            "tryItOutEnabled": False,
        }
        return (
            f"window.ui = SwaggerUIBundle(Object.assign({json.dumps(options)}, "
            "{presets: [SwaggerUIBundle.presets.apis], layout: 'BaseLayout'}));\n"
        ).encode()

    def page(self, path: str) -> Page | None:
        """(content type, body, extra headers) for a docs path, or None if there is no such file."""
        security = [(b"content-security-policy", _CSP), (b"x-content-type-options", b"nosniff")]
        if path in (self.prefix, self.prefix + "/"):
            return b"text/html; charset=utf-8", self._html(), security
        name = path[len(self.prefix) + 1 :]
        if name == "init.js":
            return b"text/javascript; charset=utf-8", self._init_js(), security
        content_type = _ASSETS.get(name)
        if content_type is None:
            return None
        return content_type, _asset(name), [*security, (b"cache-control", b"public, max-age=86400")]
