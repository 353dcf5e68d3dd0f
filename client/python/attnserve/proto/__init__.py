"""Stubs generated from proto/attnserve.proto (attnserve.v1) and
proto/inference.proto (the Open Inference Protocol) by
client/python/generate_stubs.sh. Do not edit: regenerate;
tests/test_stubs.py fails when they differ from what proto/ generates."""
