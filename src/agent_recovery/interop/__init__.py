"""Conversions from other systems' failure reports into this protocol's messages.

Each module maps one foreign format, as data plus a small pure function; none
of them is needed to speak the protocol.
"""

__all__: list[str] = []
