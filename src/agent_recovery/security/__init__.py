"""agent_recovery.security"""
