"""JSON answers."""

import json

from werkzeug.wrappers import Response


def json_response(document, status=200, headers=None):
    """``document`` as a JSON response."""
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status=status, headers=headers, content_type="application/json")
