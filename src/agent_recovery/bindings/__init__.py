"""agent_recovery.bindings"""
