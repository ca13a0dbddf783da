"""agent_recovery.bindings.http"""
