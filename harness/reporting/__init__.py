"""Reporters: turn results (data) into text for people and files for machines."""
