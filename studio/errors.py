"""Errors a user can fix: a bad script or subtitle file, a bad checkpoint, a bad request.

Catch `StudioError` to show a message instead of a traceback; anything else is a bug. Errors
in a text file carry its 1-based line, so the CLI and the UI can point at it.
"""

from __future__ import annotations


class StudioError(Exception):
    """A problem in user input, with the 1-based source line when one is known."""

    def __init__(self, message: str, line: int | None = None):
        self.message = message
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


class ScriptError(StudioError):
    """The script text cannot be read: syntax, unknown voice or tag, value out of range."""


class SubtitleError(StudioError):
    """An SRT or WebVTT file cannot be read: malformed timing, backwards cue, too many cues."""


class CheckpointError(StudioError):
    """A checkpoint file is missing, corrupt, refused as unsafe, or does not match its config."""


class EngineError(StudioError):
    """A request the engine cannot serve: unknown voice or model, mismatched model pair."""
