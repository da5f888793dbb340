"""Launch the dubbing studio: `python app.py` serves it on http://127.0.0.1:7860."""

from studio.ui import launch

if __name__ == "__main__":
    launch()
