"""agent_recovery.bindings"""

__all__: list[str] = []
