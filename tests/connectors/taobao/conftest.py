"""Fixtures of the Taobao tests (see ``taobao_helpers``)."""

from taobao_helpers import connector, taobao

__all__ = ["connector", "taobao"]
