"""Adapters that plug a :class:`semspace.Encoder` into other libraries' interfaces, each behind its own extra:

- :mod:`semspace.integrations.mteb` — ``MTEBEncoder``, an encoder ``mteb.evaluate`` accepts (``semspace[mteb]``);
- :mod:`semspace.integrations.langchain` — ``SemspaceEmbeddings``, a LangChain ``Embeddings``, and
  ``SemspaceVectorStore``, a collection (local or remote) as a LangChain ``VectorStore`` (``semspace[langchain]``);
- :mod:`semspace.integrations.llamaindex` — ``SemspaceVectorStore``, a collection as a LlamaIndex vector store, and
  ``SemspaceEmbedding``, an encoder as a LlamaIndex embed model (``semspace[llamaindex]``).

They sit at the evaluate layer (right of encode) and are never imported by lower layers; importing this package
imports no adapter, so a missing extra fails only where it is used, with a ``pip install`` hint.
"""
