"""Ways to show an attribution result: terminal text (``text``)."""
