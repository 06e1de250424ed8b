"""Model backends: in-process llama.cpp (``llama``) and a deterministic toy (``toy``)."""
