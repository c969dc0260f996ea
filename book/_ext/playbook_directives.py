"""Sphinx directives used by the book's pages."""


def setup(app):
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.1"}
