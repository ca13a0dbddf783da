"""agent_recovery.bindings.a2a"""
