"""Tests of the async SCIM client."""
