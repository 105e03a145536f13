"""Platform emulators on loopback for tests, benchmarks and people: see :mod:`vault.sandbox.kit`."""

from vault.sandbox.kit import FAULT_KINDS, FaultPlan, Request, Response, Sandbox, json_response

__all__ = ["FAULT_KINDS", "FaultPlan", "Request", "Response", "Sandbox", "json_response"]
