"""JSON responses as Salesforce sends them: compact, with `Content-Type: application/json;charset=UTF-8`."""

import json
from typing import Any

from starlette.responses import JSONResponse as _StarletteJSONResponse

from emulator.surrogates import replace_surrogates_in_text

# The REST API guide's own example response ("Limit Info Header") carries this exact header.
JSON_MEDIA_TYPE = "application/json;charset=UTF-8"


def json_bytes(content: Any) -> bytes:
    """`content` serialized as Salesforce does: UTF-8, no spaces after separators."""
    text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Bodies lose their lone surrogates on the way in; a record stored before that still holds one.
        return replace_surrogates_in_text(text).encode("utf-8")


class JSONResponse(_StarletteJSONResponse):
    """Starlette's JSONResponse with Salesforce's content type."""

    media_type = JSON_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return json_bytes(content)
