"""Embeddings: providers, chunking, the in-memory vector index, semantic ranking and fusion.

Public surface:

- ``service.EmbeddingService`` — one per daemon: the configured provider (loaded lazily), its
  health, and the vector index kept in step with the ``embeddings`` table.
- ``chunking`` — documents cut into chunks that fit the model, each with a title/reference header.
- ``semantic.semantic_search`` — a query's best documents by cosine similarity (chunks collapsed).
- ``fusion.reciprocal_rank_fusion`` — pure Reciprocal Rank Fusion of ranked lists.

The bundled local models and each provider's defaults are pure data in ``embedding_catalog``
(base layer, so ``config`` can validate ``[embedding]`` against them).

Layering (docs/architecture.md): this package is the ``embedding`` layer, between the engine and
the store. The engine, ``sync`` and ``services`` import it; it imports ``store`` and the base layer
(``config``, ``errors``, ``embedding_catalog``, ...), never ``engine``, ``sync``, ``services`` or
``rpc``.
"""
