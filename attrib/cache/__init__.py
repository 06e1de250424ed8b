"""Caching model answers on disk, in two parts with one job each.

- :mod:`attrib.cache.store`: the store. :class:`~attrib.cache.store.ResponseCache` keeps
  response bodies in SQLite under SHA-256 request keys (:func:`~attrib.cache.store.request_key`)
  and knows where they live by default (:func:`~attrib.cache.store.default_cache_dir`).
  It knows nothing of backends: the OpenAI-compatible backend keeps its endpoint metadata
  in one directly.
- :mod:`attrib.cache.wrapper`: the backend wrapper.
  :class:`~attrib.cache.wrapper.CachingBackend` wraps any
  :class:`~attrib.backend.Backend` and answers ``score`` and ``generate`` from a store,
  so interrupted runs resume and re-runs are free; :data:`~attrib.cache.wrapper.CacheSpec`
  is how callers ask for one (``cache=``).
"""
