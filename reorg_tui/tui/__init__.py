"""The dashboard face: a Textual app hosting the engine. Nothing outside tui/ imports Textual."""
