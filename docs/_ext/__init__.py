"""Build-time extensions of the documentation site (not pages; excluded in mkdocs.yml)."""
