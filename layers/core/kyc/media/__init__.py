"""Where untrusted media is opened, validated and decoded (PyAV). No AWS calls."""
