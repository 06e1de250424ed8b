"""Ways to show an attribution result: terminal text (``text``), a self-contained HTML page (``html``), and the audit findings both render (``findings``)."""
