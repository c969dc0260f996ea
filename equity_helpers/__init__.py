"""Helpers behind the health-inequalities playbook."""
