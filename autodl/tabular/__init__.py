"""Tabular AutoML: data loading, scikit-learn pipelines from configs, and ``autodl.search``."""

from autodl.tabular.search import SearchResult, SearchSpec, load_best_model, search

__all__ = ["search", "SearchResult", "SearchSpec", "load_best_model"]
