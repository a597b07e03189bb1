"""The bundled generation loop (:class:`LLM`) and its OpenAI-compatible server."""

from .llm import LLM, Completion, ResponseFormat, StreamChunk

__all__ = ["LLM", "Completion", "ResponseFormat", "StreamChunk"]
