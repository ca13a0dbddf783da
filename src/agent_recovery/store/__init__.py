"""agent_recovery.store"""
