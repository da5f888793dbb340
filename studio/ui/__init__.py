"""The studio in the browser (Gradio)."""

from studio.ui.app import build_app, launch

__all__ = ["build_app", "launch"]
