"""JSON answers."""

import json

from werkzeug.wrappers import Response


def json_response(document, status=200, headers=None):
    """``document`` as a JSON response."""
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    try:
        body = body.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (a test's hand-made transaction) has no UTF-8 form; JSON's
        # \uXXXX escape carries it as Salt Edge would send it.
        body = json.dumps(document, separators=(",", ":")).encode("ascii")
    return Response(body, status=status, headers=headers, content_type="application/json")
