"""Embeddings: providers, chunking, the in-memory vector index, semantic ranking and fusion.

Public surface:

- ``catalog`` — pure data (the bundled local models, per-provider defaults); imports nothing of
  the project, so ``config`` can validate ``[embedding]`` against it.
- ``service.EmbeddingService`` — one per daemon: the configured provider (loaded lazily), its
  health, and the vector index kept in step with the ``embeddings`` table.
- ``chunking`` — documents cut into chunks that fit the model, each with a title/reference header.
- ``semantic.semantic_search`` — a query's best documents by cosine similarity (chunks collapsed).
- ``fusion.reciprocal_rank_fusion`` — pure Reciprocal Rank Fusion of ranked lists.

Layering: ``sync`` and ``services`` import this package; it imports ``store``, ``config``,
``errors`` and ``protocol``, never ``sync`` or ``services``.
"""
