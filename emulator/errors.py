"""Salesforce-shaped errors raised by the emulator's domain layer and answered by its HTTP layer."""

_COMMON = frozenset({"statusCode", "message", "fields"})


class ApiError(Exception):
    """A Salesforce REST error answered as [{"message", "errorCode", "fields"?}] with `status`."""

    def __init__(self, status: int, error_code: str, message: str, fields: list[str] | None = None):
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields

    def to_body(self) -> list:
        item: dict = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            item["fields"] = list(self.fields)
        return [item]


class RecordError(ApiError):
    """A record failed validation/DML; `errors` in sObject Collections shape."""

    def __init__(self, errors: list[dict]):
        if not errors:
            raise ValueError("RecordError needs at least one error")
        first = errors[0]
        super().__init__(400, first["statusCode"], first["message"], list(first.get("fields", [])))
        # Extra keys (a DuplicateError's duplicateResult) follow the three every error has.
        self.errors = [
            {
                "statusCode": e["statusCode"],
                "message": e["message"],
                "fields": list(e.get("fields", [])),
                **{k: v for k, v in e.items() if k not in _COMMON},
            }
            for e in errors
        ]

    def to_body(self) -> list[dict]:
        return [
            {
                "message": e["message"],
                "errorCode": e["statusCode"],
                "fields": e["fields"],
                **{k: v for k, v in e.items() if k not in _COMMON},
            }
            for e in self.errors
        ]


class MultipleChoicesError(ApiError):
    """An external id matched several records: HTTP 300 whose body lists the records' URLs."""

    def __init__(self, urls: list[str]):
        super().__init__(300, "MULTIPLE_CHOICES", f"Multiple records match: {len(urls)}")
        self.urls = list(urls)

    def to_body(self) -> list:
        # Salesforce answers a bare JSON array of the matching records' URLs, not error objects.
        return list(self.urls)
