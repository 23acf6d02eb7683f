"""Where the answers agree: embeddings of each finished answer, the similarity matrix, the
medoid, outliers and support per sentence, updated as answers arrive; and the synthesis.

No textual import; numpy and the embedder are used inside the functions that need them.
"""
