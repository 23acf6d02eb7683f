"""Provider registry: one shared HTTP client, one adapter per wire protocol."""

from __future__ import annotations

import httpx

from core.providers.anthropic import AnthropicProvider
from core.providers.base import ChunkSink, HttpProvider, Message, Provider
from core.providers.gemini import GeminiProvider
from core.providers.ollama import OllamaProvider
from core.providers.openai import OpenAIProvider

HTTP_PROVIDERS: dict[str, type[HttpProvider]] = {
    cls.name: cls for cls in (OpenAIProvider, AnthropicProvider, GeminiProvider, OllamaProvider)
}

__all__ = ["HTTP_PROVIDERS", "ChunkSink", "Message", "Provider", "ProviderSet", "make_client"]


def make_client(n_models: int) -> httpx.AsyncClient:
    """The one client every HTTP provider shares, its pool sized to the fan-out."""
    size = max(4, n_models + 2)
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
        follow_redirects=True,
        trust_env=True,
    )


class ProviderSet:
    """Provider instances for one client; the local provider is created (and llama-cpp
    imported) only when a local model is first used."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client
        self._instances: dict[str, Provider] = {}

    def get(self, name: str) -> Provider:
        provider = self._instances.get(name)
        if provider is None:
            provider = self._create(name)
            self._instances[name] = provider
        return provider

    def _create(self, name: str) -> Provider:
        if name in HTTP_PROVIDERS:
            return HTTP_PROVIDERS[name](self._client)
        if name == "local":
            from core.providers.local import LocalProvider

            return LocalProvider()
        raise KeyError(name)

    async def aclose(self) -> None:
        for provider in self._instances.values():
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()
