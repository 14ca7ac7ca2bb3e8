"""Offline stand-ins for the Beyond Presence API and Daily."""
