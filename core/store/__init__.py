"""The local vector store: knowledge base and history by meaning."""
