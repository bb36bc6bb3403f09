"""The pydantic field type for secret references in the config."""

from __future__ import annotations

from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

from clghub.config.secrets import Secret

__all__ = ["SecretRef", "UnresolvedSecretError"]


class UnresolvedSecretError(RuntimeError):
    """A secret was used before the loader resolved it (a programming error)."""


class SecretRef:
    """``{ env = "NAME" }`` or ``{ file = "PATH" }`` as written in the config.

    The loader resolves references of enabled sections only, so a disabled
    source's unset variables are not errors.
    """

    __slots__ = ("_secret", "env", "file")

    def __init__(self, *, env: str | None = None, file: str | None = None) -> None:
        self.env = env
        self.file = file
        self._secret: Secret | None = None

    @property
    def resolved(self) -> bool:
        return self._secret is not None

    def bind(self, secret: Secret) -> None:
        self._secret = secret

    def reveal(self) -> str:
        if self._secret is None:
            raise UnresolvedSecretError(f"{self!r} was not resolved")
        return self._secret.reveal()

    def as_mapping(self) -> dict[str, str]:
        return {"env": self.env} if self.env is not None else {"file": self.file or ""}

    def __repr__(self) -> str:
        where = f"env:{self.env}" if self.env is not None else f"file:{self.file}"
        return f"SecretRef({where})"

    @classmethod
    def of_value(cls, value: str, source: str = "value") -> SecretRef:
        """A reference already bound to a value (for programmatic configs)."""
        ref = cls(env=source)
        ref.bind(Secret(value, source))
        return ref

    @classmethod
    def _validate(cls, value: Any) -> SecretRef:
        if isinstance(value, SecretRef):
            return value
        if isinstance(value, dict):
            keys = set(value)
            if keys == {"env"} and isinstance(value["env"], str) and value["env"]:
                return cls(env=value["env"])
            if keys == {"file"} and isinstance(value["file"], str) and value["file"]:
                return cls(file=value["file"])
        # Never echo the input: it may be the secret itself.
        raise PydanticCustomError(
            "secret_reference",
            'must be a reference, { env = "NAME" } or { file = "PATH" }, not a literal value',
        )

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source_type: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda ref: ref.as_mapping()
            ),
        )
