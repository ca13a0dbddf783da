"""agent_recovery.testing"""
