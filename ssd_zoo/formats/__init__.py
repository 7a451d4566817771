"""Readers and writers of weight files (MXNet .params, safetensors, .pth)."""
